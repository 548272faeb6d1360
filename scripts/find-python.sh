#!/bin/sh
# Prints the Python that `make` builds .venv with: Python 3.12 (or 3.13) when the machine has
# one, on PATH or under pyenv, else python3. The package runs on 3.11 and newer; from 3.12,
# coverage measures the test suite through sys.monitoring at a fraction of the cost of its
# 3.11 tracer. mypy and ruff check the code against 3.11 whichever Python runs the tests.
for version in 3.12 3.13; do
    if command -v "python$version" >/dev/null 2>&1 && "python$version" -c '' >/dev/null 2>&1; then
        command -v "python$version"
        exit 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)/versions/$version".*/bin/"python$version"; do
            if [ -x "$candidate" ] && "$candidate" -c '' >/dev/null 2>&1; then
                echo "$candidate"
                exit 0
            fi
        done
    fi
done
echo python3
