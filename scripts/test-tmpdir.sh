#!/bin/sh
# Prints the folder `make test` keeps the tests' temporary files in (TMPDIR: pytest's tmp_path,
# the sandbox servers' folders, Dovecot's mail): /dev/shm when it is a memory file system
# (tmpfs) with 2 GiB free, else $TMPDIR or /tmp. The tests write and remove tens of thousands
# of small files; on a disk's file system each one costs journal work, in memory it does not.
# A test that needs a disk makes its own folder (tests/integration/test_pipeline.py, on_disk).
if [ -z "${MAILINTAKE_TEST_ON_DISK:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] \
    && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] \
    && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -ge 2097152 ]; then
    echo /dev/shm
else
    echo "${TMPDIR:-/tmp}"
fi
