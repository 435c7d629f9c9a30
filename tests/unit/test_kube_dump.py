"""The failure dump: every section formatted, none hiding another."""

from __future__ import annotations

from pathlib import Path

from kube_fakes import FakeMachine, event, node, pod
from kubernetes import client as k8s

from harness.k8s.dump import (
    failure_dump,
    format_events,
    format_nodes,
    format_pods,
    kubesolo_console_lines,
)
from harness.k8s.node import KubeNode
from harness.k8s.settings import KubeSettings


class TestDump:
    def test_nodes_show_each_condition(self) -> None:
        lines = format_nodes([node("False", "b-1")])
        assert lines[0] == "node kubesolo-abc123 (boot b-1)"
        assert "  Ready=False KubeletReady:" in lines

    def test_no_nodes(self) -> None:
        assert format_nodes([]) == ["(no nodes registered)"]

    def test_pods_show_container_states(self) -> None:
        done = pod("Failed")
        done.status.container_statuses[0].state = k8s.V1ContainerState(
            terminated=k8s.V1ContainerStateTerminated(exit_code=1, reason="Error")
        )
        lines = format_pods([pod("Pending", "ErrImageNeverPull"), pod("Running"), done])
        text = "\n".join(lines)
        assert "pod t-1/web Pending node=kubesolo-abc123" in text
        assert "waiting ErrImageNeverPull: pull failed" in text
        assert "restarts=0 running" in text
        assert "terminated Error exit=1" in text

    def test_events_oldest_first_latest_kept(self) -> None:
        events = [event(5, "Late"), event(None, "Undated"), event(1, "Early", count=3)]
        lines = format_events(events, limit=2)
        assert len(lines) == 2
        assert "Early x3 kube-system/Pod/coredns-1: Early happened" in lines[0]
        assert "Late" in lines[1]
        assert format_events([]) == ["(no events)"]

    def test_console_lines_of_the_current_kubesolo_run(self) -> None:
        text = (
            "[kubesolo-init] [OK] Stage 90-kubesolo.sh complete\r\n"
            "\x1b[32mINF\x1b[0m starting kubesolo...\n"
            "old boot line\n"
            "[kubesolo-init] rebooted\n"
            "\x1b[32mINF\x1b[0m starting kubesolo...\n"
            "\x1b[31mERR\x1b[0m shutdown requested before kubelet was ready\n"
        )
        assert kubesolo_console_lines(text) == [
            "INF starting kubesolo...",
            "ERR shutdown requested before kubelet was ready",
        ]
        assert kubesolo_console_lines("a\nb\nc", limit=2) == ["b", "c"]
        assert kubesolo_console_lines("") == ["(console is empty)"]

    def test_dump_has_one_heading_per_section(self) -> None:
        text = failure_dump({"node conditions": ["a"], "events": ["b", "c"]})
        assert text == "==== node conditions ====\na\n==== events ====\nb\nc\n"

    def test_dump_before_the_api_is_known_still_shows_the_console(self, tmp_path: Path) -> None:
        machine = FakeMachine(tmp_path, console="starting kubesolo...\nkine is ready...\n")
        text = KubeNode(machine, KubeSettings()).dump()
        assert "==== node conditions ====\n(no API client" in text
        assert "==== KubeSolo console ====\nstarting kubesolo...\nkine is ready..." in text

    def test_a_broken_section_does_not_hide_the_others(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path, console="starting kubesolo..."), KubeSettings())
        node_.api = k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:9"))
        text = node_.dump()
        assert text.count("(unavailable:") == 3
        assert "starting kubesolo..." in text
