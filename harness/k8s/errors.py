"""The Kubernetes layer's errors, each in the harness family that says what it
means (harness.errors): a wait that ran out is a HarnessTimeout; a node that
did something waiting cannot fix is a GuestAssertion."""

from __future__ import annotations

from harness.errors import GuestAssertion, HarnessError, HarnessTimeout, UserError


class KubeError(HarnessError):
    """Base of the Kubernetes layer's errors: one line that says what went wrong."""


class KubeconfigError(KubeError):
    """The admin kubeconfig cannot be used (yet)."""


class ManifestError(KubeError):
    """A fixture manifest is missing or needs values nobody gave."""


class ApiRejected(KubeError):
    """The API server refuses the harness for good (401/403, a certificate that does not
    verify): the wait stops at once, with the reason."""


class KubeWaitTimeout(KubeError, HarnessTimeout):
    """A wait ran out of budget."""


class KubeBlocked(KubeError, GuestAssertion):
    """The node did something waiting cannot fix (a pod that cannot start, a
    failed Job, KubeSolo dead on the console): the wait stops at once."""


class PreloadError(KubeError, UserError):
    """--kubesolo-images cannot give the suites their images: what the user passed is wrong."""
