#!/bin/sh
# fetch-jars.sh VERSION POM CACHEDIR -> prints a directory holding the jars of Neo4j Community VERSION (the
# server, org.neo4j:neo4j, and everything it needs at runtime), fetched from Maven Central with Maven
# into CACHEDIR/neo4j-VERSION/lib (its own local repository beside it) if they are not there yet.
set -eu
version="$1" pom="$2" cachedir="$3"
out="$cachedir/neo4j-$version/lib"
if [ ! -f "$out/neo4j-$version.jar" ]; then
  command -v mvn >/dev/null || { echo "fetch-jars.sh: Maven (mvn) is not installed" >&2; exit 1; }
  tmp="$(mktemp -d)"
  echo "fetch-jars.sh: fetching org.neo4j:neo4j:$version and its runtime dependencies" >&2
  sed "s/@NEO4J_VERSION@/$version/" "$pom" >"$tmp/pom.xml"
  (cd "$tmp" && mvn -q -B -Dmaven.repo.local="$cachedir/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/lib") >&2
  [ -f "$tmp/lib/neo4j-$version.jar" ] || { echo "fetch-jars.sh: no neo4j-$version.jar fetched" >&2; exit 1; }
  mkdir -p "$cachedir/neo4j-$version"
  rm -rf "$out" && mv "$tmp/lib" "$out"
  rm -rf "$tmp"
fi
echo "$out"
