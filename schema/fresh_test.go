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
	fresh, err := os.ReadFile(filepath.Join(out, "fhir-r4-elements.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, r4JSON) {
		t.Fatal("generated tables are stale: run go generate ./schema")
	}
}

// goTool finds the go command that runs this test, even when PATH lacks it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}
