// Command etcd is etcd's own server entry point, built from the etcd module
// the pinned Kubernetes release depends on, so no release download is needed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
