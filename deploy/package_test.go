package deploy_test

// The .deb and .rpm of `make package` (deploy/package, nfpm) and the man
// page (deploy/man): built into a temporary directory, inspected with
// dpkg-deb and rpm, the maintainer scripts run against a temporary root.

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPackageVersion: deploy/package/version.sh turns git describe into
// versions that dpkg accepts and orders as releases should be ordered.
func TestPackageVersion(t *testing.T) {
	cases := []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-rc1-4-gabc1234", "1.2.3~rc1+git4.abc1234"},
		{"abc1234", "0.0.0~gitabc1234"},
		{"release_x-y", "0.0.0~gitrelease.x.y"},
	}
	valid := regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
	for _, c := range cases {
		got := strings.TrimSpace(run(t, "sh", "package/version.sh", c.describe))
		if got != c.want {
			t.Errorf("version.sh %s = %q, want %q", c.describe, got, c.want)
		}
		if !valid.MatchString(got) {
			t.Errorf("version.sh %s = %q: not a Debian and RPM version", c.describe, got)
		}
	}
	if got := strings.TrimSpace(run(t, "sh", "package/version.sh")); !valid.MatchString(got) {
		t.Errorf("version.sh (this checkout) = %q", got)
	}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not found: ordering not checked")
	}
	order := []string{"0.0.0~gitabc1234", "1.2.3~rc1", "1.2.3~rc1+git4.abc1234", "1.2.3", "1.2.3+git4.abc1234", "1.2.4"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command(dpkg, "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", order[i-1], order[i])
		}
	}
}

// manWarnings runs groff -ww and man --warnings on a page and reports any
// diagnostic.
func manWarnings(t *testing.T, path string) {
	t.Helper()
	if groff, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command(groff, "-z", "-man", "-ww", path).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff -z -man -ww %s: %v\n%s", path, err, out)
		}
	} else {
		t.Log("groff not found (Debian groff-base): not checked with groff -ww")
	}
	if man, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command(man, "--warnings", "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man --warnings -l %s: %v\n%s", path, err, stderr.String())
		}
	} else {
		t.Log("man not found (Debian man-db): not checked with man --warnings")
	}
}

// TestManPage: the committed deploy/man/phonehome.1 is what the generator
// makes from the binary's --help-man (`make man`), and formats without
// warnings.
func TestManPage(t *testing.T) {
	bin := buildSensor(t)
	out := filepath.Join(t.TempDir(), "phonehome.1")
	run(t, "go", "run", "./man/gen", "-bin", bin, "-o", out)
	if !bytes.Equal(read(t, out), read(t, "man/phonehome.1")) {
		t.Error("deploy/man/phonehome.1 is out of date: make man")
	}
	page := string(read(t, out))
	for _, want := range []string{`.SH "NAME"` + "\nphonehome \\- ", `.SS "run [<flags>]"`, `\-\-storage.dsn`, `.SH "FILES"`, `.SH "EXIT STATUS"`} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	manWarnings(t, out)
}

// debEntry is a line of dpkg-deb --contents.
type debEntry struct{ mode, owner string }

// TestPackage runs `make package` into a temporary directory and checks
// the .deb (control fields, conffiles, every file and its mode, the unit's
// ExecStart, the man page, the binary), runs its postinst and prerm
// against a temporary root with the real groupadd/useradd (--root) and a
// recording systemctl, and lists the .rpm with rpm -qp.
func TestPackage(t *testing.T) {
	mk := tool(t, "make", "make")
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	out := t.TempDir()
	cmd := exec.Command(mk, "-C", "..", "package", "PKG_OUT="+out, "BIN="+filepath.Join(out, "phonehome"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, b)
	}
	version := strings.TrimSpace(run(t, "sh", "package/version.sh"))
	deb := filepath.Join(out, "phonehome_"+version+"_amd64.deb")
	rpmFile := filepath.Join(out, "phonehome_"+version+"_amd64.rpm")

	// Control fields and conffiles.
	fields := map[string]string{"Package": "phonehome", "Version": version, "Architecture": "amd64"}
	for k, want := range fields {
		if got := strings.TrimSpace(run(t, dpkgDeb, "--field", deb, k)); got != want {
			t.Errorf("%s: %s = %q, want %q", deb, k, got, want)
		}
	}
	info := run(t, dpkgDeb, "--info", deb)
	for _, want := range []string{"postinst", "prerm", "conffiles", "Recommends: tcpdump"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %s:\n%s", want, info)
		}
	}
	control := t.TempDir()
	run(t, dpkgDeb, "--control", deb, control)
	conffiles := strings.Fields(string(read(t, filepath.Join(control, "conffiles"))))
	if strings.Join(conffiles, " ") != "/etc/default/phonehome /etc/logrotate.d/phonehome" {
		t.Errorf("conffiles %q", conffiles)
	}

	// Files and modes.
	entries := map[string]debEntry{}
	for _, l := range strings.Split(strings.TrimSpace(run(t, dpkgDeb, "--contents", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", l)
		}
		entries[strings.TrimPrefix(f[5], ".")] = debEntry{f[0], f[1]}
	}
	want := map[string]string{
		"/usr/bin/phonehome":                    "-rwxr-xr-x",
		"/lib/systemd/system/phonehome.service": "-rw-r--r--",
		"/etc/default/phonehome":                "-rw-r--r--",
		"/etc/logrotate.d/phonehome":            "-rw-r--r--",
		"/usr/share/man/man1/phonehome.1.gz":    "-rw-r--r--",
	}
	for path, mode := range want {
		e, ok := entries[path]
		if !ok {
			t.Errorf("%s missing from the .deb", path)
			continue
		}
		if e.mode != mode || e.owner != "root/root" {
			t.Errorf("%s: %s %s, want %s root/root", path, e.mode, e.owner, mode)
		}
	}

	// Contents.
	root := t.TempDir()
	run(t, dpkgDeb, "-x", deb, root)
	unit := parseUnit(t, read(t, filepath.Join(root, "lib/systemd/system/phonehome.service")))
	src := parseUnit(t, read(t, "systemd/phonehome.service"))
	wantExec := strings.Replace(src.get("Service", "ExecStart"), "/usr/local/bin/phonehome", "/usr/bin/phonehome", 1)
	if got := unit.get("Service", "ExecStart"); got != wantExec || !strings.HasPrefix(got, "/usr/bin/phonehome run ") {
		t.Errorf("packaged ExecStart = %q, want %q", got, wantExec)
	}
	if doc := unit.get("Unit", "Documentation"); !strings.Contains(doc, "man:phonehome(1)") {
		t.Errorf("packaged Documentation = %q lacks man:phonehome(1)", doc)
	}
	for dst, srcPath := range map[string]string{"etc/default/phonehome": "systemd/phonehome.env", "etc/logrotate.d/phonehome": "logrotate/phonehome"} {
		if !bytes.Equal(read(t, filepath.Join(root, dst)), read(t, srcPath)) {
			t.Errorf("/%s is not deploy/%s", dst, srcPath)
		}
	}
	if v := run(t, filepath.Join(root, "usr/bin/phonehome"), "version"); strings.TrimSpace(v) == "" {
		t.Error("phonehome version printed nothing")
	}
	gz, err := os.Open(filepath.Join(root, "usr/share/man/man1/phonehome.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	gz.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte(`.TH PHONEHOME 1 "" "phonehome `+version+`"`)) {
		t.Errorf("packaged man page title: %q", bytes.SplitN(page, []byte("\n"), 2)[0])
	}
	manPath := filepath.Join(t.TempDir(), "phonehome.1")
	if err := os.WriteFile(manPath, page, 0o644); err != nil {
		t.Fatal(err)
	}
	manWarnings(t, manPath)

	t.Run("scripts", func(t *testing.T) { maintainerScripts(t, control) })

	// The .rpm.
	rpm, err := exec.LookPath("rpm")
	if err != nil {
		t.Skip("rpm not found (Debian rpm): the .rpm is only checked to exist")
	}
	list := run(t, rpm, "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, rpmFile)
	rpmWant := map[string]string{
		"/usr/bin/phonehome":                        "-rwxr-xr-x root:root  ",
		"/usr/lib/systemd/system/phonehome.service": "-rw-r--r-- root:root  ",
		"/etc/default/phonehome":                    "-rw-r--r-- root:root cn ",
		"/etc/logrotate.d/phonehome":                "-rw-r--r-- root:root cn ",
		"/usr/share/man/man1/phonehome.1.gz":        "-rw-r--r-- root:root  ",
	}
	for path, prefix := range rpmWant {
		if !strings.Contains(list, prefix+path+"\n") {
			t.Errorf("rpm: want %q%s in\n%s", prefix, path, list)
		}
	}
	if v := strings.TrimSpace(run(t, rpm, "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpmFile)); v != "phonehome "+version+" x86_64" {
		t.Errorf("rpm: %q", v)
	}
	scripts := run(t, rpm, "-qp", "--scripts", rpmFile)
	if !strings.Contains(scripts, "postinstall scriptlet") || !strings.Contains(scripts, "preuninstall scriptlet") {
		t.Errorf("rpm scripts:\n%s", scripts)
	}
}

// maintainerScripts runs the .deb's postinst and prerm as dpkg
// --root=ROOT --force-script-chrootless would (DPKG_ROOT=ROOT): the real
// groupadd and useradd write ROOT/etc, and a systemctl first on PATH
// records its arguments. Needs root (useradd --root chroots).
func maintainerScripts(t *testing.T, control string) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the maintainer scripts are not run")
	}
	for _, p := range []string{"useradd", "groupadd"} {
		tool(t, p, "passwd")
	}
	postinst := filepath.Join(control, "postinst")
	prerm := filepath.Join(control, "prerm")
	root := t.TempDir()
	write := func(path, s string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	write(filepath.Join(root, "etc/group"), "root:x:0:\n", 0o644)
	write(filepath.Join(root, "etc/shadow"), "root:*:19000:0:99999:7:::\n", 0o640)
	write(filepath.Join(root, "etc/gshadow"), "root:*::\n", 0o640)
	fake := t.TempDir()
	logPath := filepath.Join(fake, "systemctl.log")
	write(filepath.Join(fake, "systemctl"), "#!/bin/sh\necho \"$*\" >> "+logPath+"\n", 0o755)
	script := func(path string, args ...string) string {
		t.Helper()
		os.Remove(logPath)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), "DPKG_ROOT="+root, "PATH="+fake+":"+os.Getenv("PATH"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, b)
		}
		b, _ := os.ReadFile(logPath)
		return string(b)
	}

	// Fresh install without systemd running: user, group, directories;
	// systemctl is not called.
	if log := script(postinst, "configure"); log != "" {
		t.Errorf("postinst configure without systemd called systemctl: %q", log)
	}
	var uid, gid string
	for _, l := range strings.Split(string(read(t, filepath.Join(root, "etc/passwd"))), "\n") {
		if f := strings.Split(l, ":"); f[0] == "phonehome" && len(f) == 7 {
			uid, gid = f[2], f[3]
			if f[5] != "/var/lib/phonehome" || !strings.HasSuffix(f[6], "/nologin") {
				t.Errorf("passwd entry %q: want home /var/lib/phonehome and a nologin shell", l)
			}
		}
	}
	if uid == "" || uid == "0" {
		t.Fatalf("postinst made no phonehome user:\n%s", read(t, filepath.Join(root, "etc/passwd")))
	}
	if !regexp.MustCompile(`(?m)^phonehome:x:` + gid + `:$`).Match(read(t, filepath.Join(root, "etc/group"))) {
		t.Errorf("no group phonehome with gid %s:\n%s", gid, read(t, filepath.Join(root, "etc/group")))
	}
	for _, d := range []string{"var/lib/phonehome", "var/log/phonehome"} {
		out := strings.Fields(run(t, "stat", "-c", "%a %u %g %F", filepath.Join(root, d)))
		if strings.Join(out, " ") != "750 "+uid+" "+gid+" directory" {
			t.Errorf("/%s: %q, want 750 %s %s directory", d, out, uid, gid)
		}
	}
	// Again (reinstall): nothing new, no error.
	passwd := read(t, filepath.Join(root, "etc/passwd"))
	script(postinst, "configure")
	if !bytes.Equal(passwd, read(t, filepath.Join(root, "etc/passwd"))) {
		t.Error("a second postinst changed /etc/passwd")
	}

	// With systemd running: daemon-reload on install, never enable or
	// start; try-restart on an upgrade (deb "configure OLD", rpm "2").
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"configure"}, "daemon-reload\n"},
		{[]string{"configure", ""}, "daemon-reload\n"},
		{[]string{"1"}, "daemon-reload\n"},
		{[]string{"configure", "0.0.1"}, "daemon-reload\ntry-restart phonehome.service\n"},
		{[]string{"2"}, "daemon-reload\ntry-restart phonehome.service\n"},
		{[]string{"abort-upgrade", "0.0.1"}, ""},
	} {
		if got := script(postinst, c.args...); got != c.want {
			t.Errorf("postinst %q: systemctl calls %q, want %q", c.args, got, c.want)
		}
	}
	// prerm stops and disables on removal only.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"remove"}, "stop phonehome.service\n--root " + root + " --no-reload disable phonehome.service\n"},
		{[]string{"0"}, "stop phonehome.service\n--root " + root + " --no-reload disable phonehome.service\n"},
		{[]string{"upgrade", "0.0.2"}, ""},
		{[]string{"1"}, ""},
	} {
		if got := script(prerm, c.args...); got != c.want {
			t.Errorf("prerm %q: systemctl calls %q, want %q", c.args, got, c.want)
		}
	}
}
