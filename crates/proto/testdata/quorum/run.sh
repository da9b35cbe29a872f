#!/bin/sh
# Compiles and runs QuorumProbe against the installed Apache ZooKeeper 3.8.0 jars.
set -e
cd "$(dirname "$0")"
CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar
out=$(mktemp -d)
javac -d "$out" -cp "$CP" QuorumProbe.java
java -cp "$out:$CP" org.apache.zookeeper.server.quorum.QuorumProbe
rm -rf "$out"
