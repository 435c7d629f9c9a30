#!/usr/bin/env bash
# The main job: build the KubeSolo OS image, boot it, run the integration
# suites (boot, persistence, k8s) under pytest -n auto, print a summary.
# Extra arguments go to pytest (e.g. --kubesolo-bin PATH --kubesolo-images DIR).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

OUT=${OUT:-out/image}
echo "[main] building the test image into $OUT"
.venv/bin/kubesolo-harness build --flavour test --out "$OUT" || exit 1

echo "[main] integration suites"
.venv/bin/pytest -n auto -p no:cacheprovider -rs --durations=10 \
    --kubesolo-image "$OUT" --junitxml=artifacts/junit.xml \
    tests/boot tests/persistence tests/k8s "$@"
status=$?
[ "$status" -eq 5 ] && { echo "[main] no tests collected" >&2; status=1; }

.venv/bin/python - "$OUT" artifacts/junit.xml <<'PY'
import json, sys, xml.etree.ElementTree as ET
manifest = json.load(open(f"{sys.argv[1]}/manifest.json"))
print("\n==== KubeSolo OS integration summary ====")
print(f"image: {sys.argv[1]} (flavour {manifest['flavour']}, kernel {manifest['kernel_version']}, "
      f"kubesolo {manifest['kubesolo']})")
try:
    suite = ET.parse(sys.argv[2]).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    a = suite.attrib
    print(f"tests: {a['tests']}, failures: {a['failures']}, errors: {a['errors']}, "
          f"skipped: {a['skipped']}, time: {float(a['time']):.0f}s")
except (OSError, ET.ParseError, AttributeError) as err:
    print(f"no test report ({err})")
PY
exit "$status"
