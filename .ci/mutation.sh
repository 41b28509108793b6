#!/usr/bin/env bash
# Mutation run over one module: mutmut (the `dev` extra) changes the module one small edit at a time and runs
# only the tests named; a mutant that no test notices "survives". Outside CI (.ci/run never calls it); see
# .ci/mutation.md for the command, the last run's figures and the equivalent mutants.
#
#   .ci/mutation.sh tinygrad_edu/check.py tests/test_check.py tests/test_check_cli.py tests/test_check_networks.py
#
# MUTATION_ONLY="GLOB..." runs only the mutants whose names match (mutmut's names, e.g.
# 'tinygrad_edu.check.x_conv_slip__mutmut_*'); the whole module is still mutated, the rest left unrun.
#
# It works in a scratch copy of the tracked files (MUTATION_DIR, default a new temporary folder), so the
# worktree never gets mutmut's mutants/ folder; the copy stays for `mutmut show NAME` (run there).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 MODULE.py TEST_FILE... (e.g. $0 tinygrad_edu/check.py tests/test_check.py)" >&2
  exit 2
fi
module=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
work=${MUTATION_DIR:-$(mktemp -d -t mutation.XXXXXX)}
mkdir -p "$work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$work"

quote() { printf '"%s", ' "$@"; }
cat >> "$work/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["tinygrad_edu"]
only_mutate = ["${module}"]
pytest_add_cli_args_test_selection = [$(quote "$@")]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
timeout_multiplier = ${MUTATION_TIMEOUT_MULTIPLIER:-15}
TOML

cd "$work"
echo "mutation run of $module with $* in $work"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # torch (interop) too: one thread each
read -r -a only <<< "${MUTATION_ONLY:-}"
nice -n 10 "$python" -m mutmut run --max-children "${MUTATION_JOBS:-2}" ${only[@]+"${only[@]}"} || true
"$python" -m mutmut results --all true > results.txt 2>&1 || "$python" -m mutmut results > results.txt 2>&1 || true
echo "results (also in $work/results.txt):"
grep -v ": killed$" results.txt || true
