// Package gensum fingerprints package graph's generated code together with
// what it is generated from, so that a test can tell, without running
// gqlgen, that the generated code is stale or was edited by hand.
package gensum

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is where the generator records the fingerprint, relative to the
// repository root.
const File = "graph/generated.sum"

// Inputs are what the generated code is generated from and Outputs what
// gqlgen writes, relative to the repository root.
var (
	Inputs  = []string{"gqlgen.yml", "schema/fhir.graphqls", "graph/internal/gqlgen/main.go", "graph/model/decimal.go"}
	Outputs = []string{"graph/generated/generated.go", "graph/model/models_gen.go"}
)

// Compute returns the fingerprint of the files under root, one
// "sha256  path" line each, preceded by the gqlgen version.
func Compute(root, gqlgenVersion string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "gqlgen %s\n", gqlgenVersion)
	for _, name := range append(append([]string{}, Inputs...), Outputs...) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	return b.String(), nil
}

// GqlgenVersion is the version of gqlgen that go.mod under root requires
// (the module's tool dependency), or "unknown".
func GqlgenVersion(root string) string {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/99designs/gqlgen" {
			return f[1]
		}
	}
	return "unknown"
}
