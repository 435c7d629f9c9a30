"""One root for every error the harness raises, so a user can catch them all,
and two families a test can ask for by meaning: the guest misbehaved
(GuestAssertion, an AssertionError) or a wait ran out (HarnessTimeout, a
TimeoutError)."""


class HarnessError(Exception):
    """Every error the harness raises derives from this."""


class UserError(HarnessError):
    """Bad input or a missing tool; the message is one line that says what to do."""


class ToolFailed(UserError):
    """A host tool (mkfs, qemu-img, xorriso, apt-get) failed; the line names it."""


class GuestAssertion(HarnessError, AssertionError):
    """The guest did not do what the test required (a failed command, a boot failure)."""


class HarnessTimeout(HarnessError, TimeoutError):
    """A wait ran out: console, test shell, boot or Kubernetes."""


class MachineNotRunning(HarnessError):
    """An action needs a running machine (start() it first, or it died)."""
