#!/usr/bin/env bash
# Mutation testing of hwprofiles with mutmut 3 (docs/testing.md has the scores and survivors).
#
# Usage:
#   benchmarks/mutation.sh [--tests "FILE..."] [--max-children N] [PATH...]
#
#   PATH          source files or folders to mutate (default: src/hwprofiles/noise/ and
#                 src/hwprofiles/nn/analog.py)
#   --tests       the pytest selection that runs against each mutant (default: the test
#                 files that exercise the noise engine, see DEFAULT_TESTS below)
#   --max-children  parallel test processes (default 1: the machine is shared)
#   --fresh       forget earlier results (mutmut does not retest cached survivors when
#                 only the tests changed: use this after adding tests)
#
# It works in a scratch copy of the working tree (.mutation/, ignored by git), so the
# tree itself is never touched; a rerun with the same arguments reuses mutmut's cache
# there and only tests mutants of changed source (other arguments start afresh). At the
# end it prints, per module, the mutants killed over the total and the score, then every
# surviving mutant by name; look at one with `cd .mutation && mutmut show NAME`.
#
# Environment: PYTHON (default .venv/bin/python, else python3) must have mutmut 3
# installed (pip install -e '.[dev]').
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
WORK="$ROOT/.mutation"
DEFAULT_TESTS="tests/test_noise_exact.py tests/test_noise_stats.py tests/test_analog_path.py tests/test_chip_semantics.py tests/test_conformance.py tests/test_rng.py"
TESTS="$DEFAULT_TESTS"
CHILDREN=1
FRESH=0
PATHS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tests) TESTS="$2"; shift 2 ;;
        --max-children) CHILDREN="$2"; shift 2 ;;
        --fresh) FRESH=1; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) PATHS+=("${1%/}"); shift ;;
    esac
done
[ ${#PATHS[@]} -gt 0 ] || PATHS=(src/hwprofiles/noise src/hwprofiles/nn/analog.py)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -c "import mutmut" 2>/dev/null || { echo "mutmut is not installed for $PYTHON (pip install -e '.[dev]')" >&2; exit 2; }

# The scratch copy: tracked and untracked-but-not-ignored files of the working tree.
mkdir -p "$WORK"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$WORK"

# mutmut reads [tool.mutmut] from pyproject.toml: add which files to mutate and which tests to run.
globs=()
for p in "${PATHS[@]}"; do
    case "$p" in *.py) globs+=("\"$p\"") ;; *) globs+=("\"$p/*\"") ;; esac
done
tests=()
for t in $TESTS; do tests+=("\"$t\""); done
{
    echo "only_mutate = [$(IFS=,; echo "${globs[*]}")]"
    echo "pytest_add_cli_args_test_selection = [$(IFS=,; echo "${tests[*]}")]"
} >> "$WORK/pyproject.toml"
"$PYTHON" - "$WORK/pyproject.toml" <<'PY'
import sys, tomllib
section = tomllib.load(open(sys.argv[1], "rb"))["tool"]["mutmut"]
assert "only_mutate" in section and "pytest_add_cli_args_test_selection" in section, "[tool.mutmut] must be the last table of pyproject.toml"
PY

cd "$WORK"
# mutmut keeps a file it copied unmutated as "unmodified": start afresh when paths or tests change.
args="paths: ${PATHS[*]}; tests: $TESTS"
if [ "$FRESH" = 1 ] || [ "$(cat .mutation-args 2>/dev/null)" != "$args" ]; then
    rm -rf mutants
    echo "$args" > .mutation-args
fi
start=$(date +%s)
env -u PYTHONPATH "$PYTHON" -m mutmut run --max-children "$CHILDREN" > mutmut-run.log 2>&1 || { tail -30 mutmut-run.log; exit 1; }
env -u PYTHONPATH "$PYTHON" -m mutmut results --all true > mutmut-results.txt
echo "mutmut run took $(( $(date +%s) - start )) s; $args"

"$PYTHON" - mutmut-results.txt <<'PY'
import collections, sys
counts = collections.defaultdict(collections.Counter)
survivors = []
for line in open(sys.argv[1]):
    name, _, status = line.strip().rpartition(": ")
    if not name:
        continue
    module = name.rsplit(".", 1)[0]
    counts[module][status] += 1
    if status not in ("killed", "timeout"):
        survivors.append(f"{name}: {status}")
total = collections.Counter()
print(f"{'module':40} {'killed':>7} {'total':>6} {'score':>7}")
for module in sorted(counts):
    c = counts[module]
    total.update(c)
    n = sum(c.values())
    killed = c["killed"] + c["timeout"]
    print(f"{module:40} {killed:7d} {n:6d} {100 * killed / n:6.1f}%")
n = sum(total.values())
killed = total["killed"] + total["timeout"]
print(f"{'all':40} {killed:7d} {n:6d} {100 * killed / max(n, 1):6.1f}%")
print(f"\nnot killed ({len(survivors)}):")
for s in survivors:
    print("  " + s)
PY
