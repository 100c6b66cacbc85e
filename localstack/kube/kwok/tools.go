//go:build tools

// The command the world builds from this module: go build sigs.k8s.io/kwok/cmd/kwok.
package kwok

import _ "sigs.k8s.io/kwok/cmd/kwok"
