# Sourced by bench/detectors.sh and bench/iforest-check.sh: makes sure the Python
# virtualenv with scikit-learn (bench/iforest/requirements.txt, from PyPI) exists under
# the target directory, and sets PY to its interpreter. Needs /usr/bin/python3 with the
# venv module: on Debian and Ubuntu, the python3-venv package.

iforest_venv() {
    local root=$1
    local venv=${CARGO_TARGET_DIR:-$root/target}/bench-venv
    local req=$root/bench/iforest/requirements.txt
    PY=$venv/bin/python
    if [ -x "$PY" ] && cmp -s "$req" "$venv/requirements.txt"; then
        return 0
    fi
    if ! /usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "bench: /usr/bin/python3 cannot make a virtualenv; install python3-venv" \
            "(Debian/Ubuntu: apt-get install python3-venv)" >&2
        return 1
    fi
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
}
