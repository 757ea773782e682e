# The Python gRPC client some tests drive the server with (grpcio sends one HTTP/2 DATA
# frame per message, as most non-Rust clients do). Sourced by scripts/test.

# py_ensure_grpcio DIR: makes DIR a virtual environment with grpcio unless it already is
# one, installing Debian's python3-venv first when venv is missing; prints its python.
py_ensure_grpcio() {
    local dir="$1"
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import grpc' 2>/dev/null; then
        echo "$dir/bin/python"
        return 0
    fi
    echo "installing grpcio into $dir" >&2
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check grpcio >&2
    "$dir/bin/python" -c 'import grpc' || { echo "grpcio install failed" >&2; return 1; }
    echo "$dir/bin/python"
}
