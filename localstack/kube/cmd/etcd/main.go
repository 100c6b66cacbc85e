// etcd for the world's control planes: the etcd server's own entry point (etcdmain), built at the
// version k8s.io/kubernetes v1.37.2 requires, so no second module graph is needed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
