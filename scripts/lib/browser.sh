# Helpers for the browser tests, sourced by scripts/test: Debian's Chromium and its
# WebDriver server, installed when missing.

# Installs chromium and chromium-driver when either is missing; prints nothing else.
browser_ensure_installed() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return 0
    fi
    echo "Chromium or ChromeDriver not found; installing the OS packages" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
    command -v chromedriver >/dev/null 2>&1 || { echo "Chromium install failed" >&2; return 1; }
}
