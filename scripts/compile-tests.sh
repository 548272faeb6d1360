#!/bin/sh
# Compiles the test modules once, before the test processes start, when some have never been
# compiled (a fresh clone): usage `compile-tests.sh PYTHON`. pytest compiles each test module
# itself, rewriting its asserts, and keeps the result in __pycache__; the test processes of
# `make test` import every module at the same moment, so in a fresh clone each of them
# rewrote all of them: ~3 s of CPU per process, 20 s in all, before the first test. One
# collection pass in one process does it once (~6 s), and the test processes find them done.
# Modules compiled before and changed since are compiled again by pytest as usual.
python="$1"
for module in $(find tests -name 'test_*.py' -o -name conftest.py); do
    set -- "$(dirname "$module")/__pycache__/$(basename "$module" .py)".*-pytest-*.pyc
    if [ ! -e "$1" ]; then
        "$python" -m pytest --collect-only -q -p no:xdist -p no:cacheprovider >/dev/null 2>&1
        exit 0  # a module that does not import fails the run that follows, with its error
    fi
done
