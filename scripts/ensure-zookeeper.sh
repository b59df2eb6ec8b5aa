#!/usr/bin/env bash
# Makes sure the tests can start a real ZooKeeper (docs/operations.md "ZooKeeper for tests, demo and
# users"). Looks where test/support/zookeeper.ts looks: ZK_CONNECT (then nothing to do),
# ZOOKEEPER_HOME, the Debian/Ubuntu package, /opt/zookeeper, /usr/local/zookeeper, Homebrew.
# Silent when everything is there; installs the OS package when it can (root or password-less
# sudo with apt-get); otherwise prints how to install and exits 1. Never prompts (CI=true safe).
set -euo pipefail

readonly DEBIAN_HOME=/usr/share/zookeeper
readonly DEBIAN_JAR=/usr/share/java/zookeeper.jar
readonly OTHER_HOMES=(/opt/zookeeper /usr/local/zookeeper /opt/homebrew/opt/zookeeper/libexec /usr/local/opt/zookeeper/libexec)

say() { printf 'ensure-zookeeper: %s\n' "$*" >&2; }

# A tarball-style home has lib/zookeeper-<version>.jar (or the jar at the top, older layout).
has_server_jar() {
  local home=$1 jar
  for jar in "$home"/lib/zookeeper-[0-9]*.jar "$home"/zookeeper-[0-9]*.jar; do
    [[ -f $jar ]] && return 0
  done
  return 1
}

find_zookeeper() {
  local home
  if [[ -n ${ZOOKEEPER_HOME:-} ]]; then
    has_server_jar "$ZOOKEEPER_HOME" || { [[ $ZOOKEEPER_HOME == "$DEBIAN_HOME" && -f $DEBIAN_JAR ]]; }
    return
  fi
  [[ -d $DEBIAN_HOME && -f $DEBIAN_JAR ]] && return 0
  for home in "${OTHER_HOMES[@]}"; do
    has_server_jar "$home" && return 0
  done
  return 1
}

find_java() {
  [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]] || command -v java >/dev/null 2>&1
}

# Prints the command prefix that gives root without a password, or fails.
root_prefix() {
  if [[ $(id -u) -eq 0 ]]; then
    echo ''
  elif command -v sudo >/dev/null 2>&1 && sudo -n true </dev/null >/dev/null 2>&1; then
    echo 'sudo -n'
  else
    return 1
  fi
}

apt_install() {
  local prefix=$1; shift
  say "installing $* with apt-get"
  # shellcheck disable=SC2086 # $prefix is empty or "sudo -n"
  $prefix env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
  # shellcheck disable=SC2086
  $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >&2
}

how_to_install() {
  say "$1"
  say 'Install it with `apt-get install -y zookeeper` (Debian/Ubuntu, brings Java too),'
  say 'or unpack an Apache ZooKeeper 3.8 binary release and set ZOOKEEPER_HOME,'
  say 'or point the tests at a running ensemble with ZK_CONNECT=host:port[,host:port...].'
  exit 1
}

main() {
  [[ -n ${ZK_CONNECT:-} ]] && return 0

  if ! find_zookeeper; then
    if [[ -n ${ZOOKEEPER_HOME:-} ]]; then
      how_to_install "ZOOKEEPER_HOME=$ZOOKEEPER_HOME holds no ZooKeeper server jar (lib/zookeeper-<version>.jar)."
    fi
    local prefix
    if command -v apt-get >/dev/null 2>&1 && prefix=$(root_prefix); then
      apt_install "$prefix" zookeeper || how_to_install 'apt-get could not install zookeeper.'
      find_zookeeper || how_to_install "apt-get installed zookeeper but $DEBIAN_JAR is still missing."
    else
      how_to_install "No ZooKeeper installation found (looked in \$ZOOKEEPER_HOME, $DEBIAN_HOME + $DEBIAN_JAR, ${OTHER_HOMES[*]})."
    fi
  fi

  if ! find_java; then
    local prefix
    if command -v apt-get >/dev/null 2>&1 && prefix=$(root_prefix); then
      apt_install "$prefix" default-jre-headless || how_to_install 'apt-get could not install Java.'
      find_java || how_to_install 'Java is still missing after installing default-jre-headless.'
    else
      say 'ZooKeeper is installed but no java executable was found (JAVA_HOME or PATH).'
      say 'Install a Java runtime (`apt-get install -y default-jre-headless`, Java 11+) or set JAVA_HOME.'
      exit 1
    fi
  fi
}

main "$@"
