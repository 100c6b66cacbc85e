//go:build tools

// The commands the world builds from this module (go build ./cmd/etcd and the two below); this
// file only keeps them in go.mod's graph for go mod tidy.
package kubeworld

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
