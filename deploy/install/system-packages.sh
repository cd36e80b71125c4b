#!/usr/bin/env bash
# The system packages the platform and its tests need, from Debian. Shared by `make install`
# (hence `make up` and `make test`) and `.ci/run`, so a fresh machine needs nothing done by hand.
#
#   JDK 17+, maven      Apache Kafka runs from Maven Central jars on the local JDK (deploy/kafka/pom.xml)
#   make                the README's two commands
#   python3-venv        `python3 -m venv` (Debian's python3 ships without ensurepip)
#   libfaketime         starts the time-skipping test server at each scenario's date
#   fonts-wqy-microhei  a CJK TrueType font: the Chinese text of the PDFs and of the browser's pages
#   poppler-utils       pdftoppm, to render the PDFs in tests
#   chromium            the browser for the console's tests
#
# Only what is missing is installed (each package checked by its command or with dpkg): Chromium
# is large, and a machine that has everything does nothing here but check.
#   root:      apt-get update (once) and apt-get install, non-interactive and quiet;
#   otherwise: stops with one line naming what to install (`sudo apt-get install ...`).
#
# Usage: deploy/install/system-packages.sh [--dry-run]
#   --dry-run  print what would be installed (or the line a non-root user gets) and change nothing.
#   PYTHON     the interpreter the Makefile builds the virtual environments with (default python3).
set -euo pipefail

dry_run=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "system-packages.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"

installed() { # installed <package>: dpkg knows it as installed
  command -v dpkg-query >/dev/null 2>&1 &&
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

java_ok() { # a java on PATH whose major version is 17 or more
  command -v java >/dev/null 2>&1 || return 1
  local version major
  version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  major="${version:-0}"
  [ "$major" -ge 17 ]
}

jdk_package() { # the Debian JDK of this release: 17 on bookworm, else the release's default (21 on trixie)
  local candidate
  for pkg in openjdk-17-jre-headless openjdk-21-jre-headless; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
    if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
      echo "$pkg"
      return
    fi
  done
  echo default-jre-headless
}

missing_packages() {
  local -a missing=()
  java_ok || missing+=("$(jdk_package)")
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v make >/dev/null 2>&1 || missing+=(make)
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || installed python3-venv || missing+=(python3-venv)
  installed libfaketime || missing+=(libfaketime)
  installed fonts-wqy-microhei || missing+=(fonts-wqy-microhei)
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  echo "${missing[*]}"
}

missing="$(missing_packages)"
if [ -z "$missing" ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages, install them and run again: sudo apt-get install -y $missing" >&2
  exit 1
fi

if [ "$dry_run" = 1 ]; then
  echo "system packages (dry run): would run apt-get update -qq; apt-get install -y -qq --no-install-recommends $missing"
  exit 0
fi

echo "system packages: installing $missing (apt-get, once) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Resolved again after the update: on a machine with no package lists the JDK's name was a guess.
missing="$(missing_packages)"
# shellcheck disable=SC2086  # word splitting intended: one argument per package
apt-get install -y -qq --no-install-recommends $missing
still="$(missing_packages)"
if [ -n "$still" ]; then
  echo "system packages: still missing after apt-get install: $still" >&2
  exit 1
fi
echo "system packages: installed $missing"
