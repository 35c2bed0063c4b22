package schema

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// defsDir is where the FHIR definitions sit next to a checkout
// (/work/shared/fhir-defs beside /work/main); the go:generate line uses it too.
const defsDir = "../../shared/fhir-defs"

func TestGeneratedTableIsFresh(t *testing.T) {
	if _, err := os.Stat(filepath.Join(defsDir, "r4", "profiles-resources.json")); err != nil {
		t.Skipf("FHIR definitions not found at %s: %v", defsDir, err)
	}
	out := t.TempDir()
	cmd := exec.Command(goTool(), "run", "./internal/gen", "-defs", defsDir, "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, msg)
	}
	graphql, err := os.ReadFile("fhir.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	for name, embedded := range map[string][]byte{
		"fhir-r4-elements.json": r4JSON,
		"search-params.json":    searchJSON,
		"fhir.graphqls":         graphql,
	} {
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, embedded) {
			t.Errorf("generated table %s is stale: run go generate ./schema", name)
		}
	}
}

// goTool finds the go command that runs this test, even when PATH lacks it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}
