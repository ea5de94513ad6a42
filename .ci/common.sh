# Sourced by the .ci scripts.

# findPython VERSION: print the command of a working Python VERSION (3.10):
# pythonVERSION on PATH, else one that pyenv keeps; status 1 if none.
findPython() {
    local candidate
    for candidate in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/python"$1"; do
        if "$candidate" -c '' 2>/dev/null; then echo "$candidate"; return 0; fi
    done
    return 1
}

# What one twisted.trial run counted.
#
# trialCounts LOG STATUS sets passed, failed and skips from trial's closing
# line ("PASSED (successes=N, skips=N)" or "FAILED (...)") in the file LOG
# and its exit STATUS: failures, errors and unexpected successes all count as
# failed; a run that exited non-zero with nothing failed, or that ran no
# test, counts one failure.
trialCounts() {
    local summary failures errors unexpected
    summary=$(grep -E '^(PASSED|FAILED) \(' "$1" | tail -n 1)
    count() { echo "$summary" | grep -oE "$1=[0-9]+" | cut -d= -f2 | head -n1; }
    passed=$(count successes); passed=${passed:-0}
    failures=$(count failures); errors=$(count errors); unexpected=$(count unexpectedSuccesses)
    skips=$(count skips); skips=${skips:-0}
    failed=$(( ${failures:-0} + ${errors:-0} + ${unexpected:-0} ))
    if [ -z "$summary" ] && [ "$2" -ne 0 ]; then failed=$(( failed + 1 )); fi
    if [ "$2" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
        echo "CI: no test ran"
        failed=1
    fi
}
