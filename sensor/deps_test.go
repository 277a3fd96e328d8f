package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/phonehome-sensor/phonehome"

// TestImportRules enforces the import rules of DESIGN.md: rules, geo and
// metrics import nothing of sensor/... nor each other; the extract parsers
// import no other package of ours; flags live only in package main; the
// unmaintained google/gopacket is never used.
func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} test:{{.}}{{end}}`, "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	leaves := []string{module + "/rules", module + "/geo", module + "/metrics"}
	isOurs := func(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }
	under := func(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }
	var checked int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg, imports := f[0], f[1:]
		checked++
		for _, imp := range imports {
			imp, inTest := strings.CutPrefix(imp, "test:")
			if strings.HasPrefix(imp, "github.com/google/gopacket") {
				t.Errorf("%s imports %s: use github.com/gopacket/gopacket", pkg, imp)
			}
			if (imp == "flag" || strings.HasPrefix(imp, "github.com/alecthomas/kingpin")) && !inTest && pkg != module+"/sensor" && !strings.HasSuffix(pkg, "/gendemo") && !strings.HasPrefix(pkg, module+"/tools/") && !strings.HasPrefix(pkg, module+"/deploy/") {
				t.Errorf("%s imports %s: flags are defined only in package main", pkg, imp)
			}
			if !isOurs(imp) {
				continue
			}
			for _, leaf := range leaves {
				if under(pkg, leaf) && !under(imp, leaf) {
					t.Errorf("%s imports %s: %s may import nothing of ours", pkg, imp, leaf)
				}
			}
			if under(pkg, module+"/sensor/internal/extract") && !under(imp, module+"/sensor/internal/extract") {
				t.Errorf("%s imports %s: extract parsers import no other package of ours", pkg, imp)
			}
			if under(imp, module+"/sensor") && !under(pkg, module+"/sensor") {
				t.Errorf("%s imports %s: only sensor/... may use sensor/internal", pkg, imp)
			}
			if imp == module+"/sensor" {
				t.Errorf("%s imports the command package", pkg)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("go list gave %d packages: the check saw nothing", checked)
	}
}
