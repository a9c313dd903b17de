# localhost/berth-neo4j:4 - Neo4j 4.4 Community: its own server (org.neo4j:neo4j 4.4.40 and its runtime
# dependencies, fetched from Maven Central by fetch-jars.sh; the official image and its tarball cannot be
# had here) on Debian's OpenJDK 17, with the official neo4j:4.4 image's contract as Berth uses it
# (rootfs/startup/docker-entrypoint.sh, where the official image has it, run by tini):
# NEO4J_HOME=/var/lib/neo4j, neo4j.conf rewritten in $NEO4J_HOME/conf from the NEO4J_* variables at
# every start, NEO4J_AUTH=neo4j/<password> given to `neo4j-admin set-initial-password` (which, as in the
# official image, only counts before the first start), data in /data and logs in /logs (symlinked from
# $NEO4J_HOME), uid/gid 7474, :7474 (HTTP, the discovery document on /) and :7687 (Bolt), CMD neo4j;
# wget and tini on PATH as in the official image.
NEO4J_VERSION=4.4.40
# Debian's openjdk-17-jre-headless is unpacked by customize below, not installed by mmdebstrap: its
# post-install script links the java man pages, which the image build leaves out, and fails there.
# Of its dependencies a server needs only the C++ runtime (libjvm); the rest serve AWT, sound, printing.
JRE_PACKAGE=openjdk-17-jre-headless
PACKAGES=(bash wget tini ca-certificates tzdata libstdc++6)
TAGS=(localhost/berth-neo4j:4)
USERS=("neo4j 7474 7474 /var/lib/neo4j /bin/bash")
CHANGES=(
  'ENTRYPOINT ["tini", "-g", "--", "/startup/docker-entrypoint.sh"]'
  'CMD ["neo4j"]'
  'USER 7474:7474'
  'ENV NEO4J_HOME=/var/lib/neo4j'
  'ENV NEO4J_EDITION=community'
  'ENV PATH=/var/lib/neo4j/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'LABEL berth.standin=neo4j'
  'WORKDIR /var/lib/neo4j'
  'VOLUME /data'
  'VOLUME /logs'
  'EXPOSE 7474'
  'EXPOSE 7687'
)
hash_extra() { # the jars are Neo4j's release of this version
  echo "neo4j=$NEO4J_VERSION"
}
customize() {
  local root="$1" lib home="$1/var/lib/neo4j"
  lib="$(sh "$HERE/neo4j/fetch-jars.sh" "$NEO4J_VERSION" "$HERE/neo4j/pom.xml" "$CACHE")"
  mkdir -p "$home/lib" "$home/plugins" "$home/import" "$home/run" "$root/data" "$root/logs"
  cp "$lib"/*.jar "$home/lib/"
  local debs="$CACHE/apt-archives" deb
  deb="$(ls "$debs/${JRE_PACKAGE}"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$deb" ]; then
    (cd "$debs" && apt-get download -q "$JRE_PACKAGE" >&2)
    deb="$(ls "$debs/${JRE_PACKAGE}"_*_amd64.deb | sort -V | tail -n 1)"
  fi
  dpkg-deb -x "$deb" "$root"
  ln -sf /usr/lib/jvm/java-17-openjdk-amd64/bin/java "$root/usr/bin/java"
  ln -s /data "$home/data"
  ln -s /logs "$home/logs"
  chmod 0755 "$root/startup/docker-entrypoint.sh" "$home/bin/neo4j" "$home/bin/neo4j-admin"
  ln -s /startup/docker-entrypoint.sh "$root/docker-entrypoint.sh"
  chmod 0644 "$home/conf/neo4j.conf" "$home"/lib/*.jar
  # As in the official image: the home, data and logs belong to neo4j.
  chown -R 7474:7474 "$home" "$root/data" "$root/logs"
  chown -h 7474:7474 "$home/data" "$home/logs"
}
