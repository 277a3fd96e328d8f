// Package deploy_test checks the deployment files under deploy/ (systemd,
// logrotate, compose, Kubernetes) and the Dockerfile at the repository
// root: with the real tools where they are installed (systemd-analyze,
// logrotate, promtool, amtool; skipped with a message otherwise), and by
// parsing them in Go. No container engine or cluster is needed.
package deploy_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "regenerate kubernetes/prometheusrule.yaml from prometheus/phonehome.rules.yml")

// tool returns the path of an installed binary, or skips the test.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: install Debian's %s (make deps)", name, pkg)
	}
	return p
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildSensor builds the phonehome binary once per test binary run.
var sensorBin string

func buildSensor(t *testing.T) string {
	t.Helper()
	if sensorBin != "" {
		return sensorBin
	}
	dir, err := os.MkdirTemp("", "phonehome-deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "phonehome")
	cmd := exec.Command("go", "build", "-o", bin, "../sensor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ../sensor: %v\n%s", err, out)
	}
	sensorBin = bin
	return bin
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if sensorBin != "" {
		os.RemoveAll(filepath.Dir(sensorBin))
	}
	os.Exit(code)
}

// ---- systemd ----

// unitFile is a systemd unit: section → key → values (in order).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, b []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("line %d: %q is not KEY=VALUE inside a section", n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnitSettings(t *testing.T) {
	u := parseUnit(t, read(t, "systemd/phonehome.service"))
	want := map[string]string{
		"Type":                  "notify",
		"User":                  "phonehome",
		"AmbientCapabilities":   "CAP_NET_RAW CAP_NET_ADMIN",
		"CapabilityBoundingSet": "CAP_NET_RAW CAP_NET_ADMIN",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"StateDirectory":        "phonehome",
		"LogsDirectory":         "phonehome",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"Restart":               "on-failure",
		"EnvironmentFile":       "-/etc/default/phonehome",
	}
	for k, v := range want {
		if got := u.get("Service", k); got != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	// A dedicated user: a fixed one, or a dynamic one with a state directory.
	if d := u.get("Service", "DynamicUser"); d != "no" && d != "yes" {
		t.Errorf("DynamicUser = %q: say yes or no", d)
	}
	if u.get("Service", "PrivateNetwork") == "yes" {
		t.Error("PrivateNetwork=yes: the sensor would not see the host's interfaces")
	}
	exec := u.get("Service", "ExecStart")
	if !strings.HasPrefix(exec, "/usr/local/bin/phonehome run ") || !strings.Contains(exec, "$PHONEHOME_ARGS") {
		t.Errorf("ExecStart = %q: want /usr/local/bin/phonehome run … $PHONEHOME_ARGS", exec)
	}
	if !strings.Contains(exec, "--storage.path /var/lib/phonehome/") {
		t.Errorf("ExecStart = %q: the inventory belongs in the StateDirectory", exec)
	}
	// Alerts on stdout, appended by systemd to a file in the LogsDirectory:
	// O_APPEND makes logrotate's copytruncate safe.
	if got := u.get("Service", "StandardOutput"); got != "append:/var/log/phonehome/alerts.json" {
		t.Errorf("StandardOutput = %q", got)
	}
	if strings.Contains(exec, "--alerts.out") || strings.Contains(exec, "--output") {
		t.Errorf("ExecStart = %q: alerts go to stdout (appended by systemd, rotated with copytruncate); outputs belong in PHONEHOME_ARGS", exec)
	}
	if af := u.get("Service", "RestrictAddressFamilies"); !strings.Contains(af, "AF_PACKET") {
		t.Errorf("RestrictAddressFamilies = %q lacks AF_PACKET", af)
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Error("[Install] WantedBy=multi-user.target missing")
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on the unit, its
// ExecStart pointed at a freshly built binary. Unknown keys and bad values
// are only warnings for systemd-analyze: any line naming the unit fails.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := tool(t, "systemd-analyze", "systemd")
	bin := buildSensor(t)
	unit := strings.ReplaceAll(string(read(t, "systemd/phonehome.service")), "/usr/local/bin/phonehome", bin)
	dir := t.TempDir()
	path := filepath.Join(dir, "phonehome.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "phonehome.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// TestSystemdEnvironment: the example /etc/default/phonehome sets
// PHONEHOME_ARGS to arguments that `phonehome run` accepts.
func TestSystemdEnvironment(t *testing.T) {
	var args string
	for _, line := range strings.Split(string(read(t, "systemd/phonehome.env")), "\n") {
		if v, ok := strings.CutPrefix(line, "PHONEHOME_ARGS="); ok {
			args = strings.Trim(v, `"`)
		}
	}
	if args == "" {
		t.Fatal("phonehome.env sets no PHONEHOME_ARGS")
	}
	if !strings.Contains(args, "-i ") {
		t.Errorf("PHONEHOME_ARGS=%q: names no interface", args)
	}
	bin := buildSensor(t)
	argv := append([]string{"run", "--storage.path", "/var/lib/phonehome/phonehome.db"}, strings.Fields(args)...)
	run(t, bin, append(argv, "--help")...)
	// An unknown flag is refused even with --help: the check above means
	// something.
	if out, err := exec.Command(bin, append(argv, "--no-such-flag", "--help")...).CombinedOutput(); err == nil {
		t.Errorf("phonehome accepted an unknown flag with --help:\n%s", out)
	}
}

// ---- logrotate ----

// TestLogrotate rotates a file the way systemd writes it (O_APPEND) with
// the config, and checks that the copy has the old lines and that later
// writes land at the start of the truncated file (no hole of NULs).
func TestLogrotate(t *testing.T) {
	conf := string(read(t, "logrotate/phonehome"))
	if !regexp.MustCompile(`(?m)^\s*copytruncate\s*$`).MatchString(conf) {
		t.Error("no copytruncate: systemd, not the sensor, holds the stdout file")
	}
	if regexp.MustCompile(`(?m)^\s*postrotate`).MatchString(conf) {
		t.Error("postrotate: the stdout file is systemd's, a SIGHUP cannot reopen it; use copytruncate")
	}
	if !strings.Contains(conf, "/var/log/phonehome/") {
		t.Error("the config does not name /var/log/phonehome/")
	}
	lr := tool(t, "logrotate", "logrotate")
	dir := t.TempDir()
	logs := filepath.Join(dir, "log")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	conf = strings.ReplaceAll(conf, "/var/log/phonehome/", logs+"/")
	conf = regexp.MustCompile(`(?m)^\s*su .*$`).ReplaceAllString(conf, "") // the user need not exist here
	confPath := filepath.Join(dir, "phonehome.logrotate")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	alerts := filepath.Join(logs, "alerts.json")
	f, err := os.OpenFile(alerts, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := `{"event":{"kind":"alert"},"n":1}` + "\n"
	if _, err := f.WriteString(old); err != nil {
		t.Fatal(err)
	}
	out := run(t, lr, "-v", "-f", "-s", filepath.Join(dir, "state"), confPath)
	if strings.Contains(out, "error:") {
		t.Fatalf("logrotate:\n%s", out)
	}
	next := `{"event":{"kind":"alert"},"n":2}` + "\n"
	if _, err := f.WriteString(next); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, alerts)); got != next {
		t.Errorf("alerts.json after rotation = %q, want %q", got, next)
	}
	rotated, _ := filepath.Glob(filepath.Join(logs, "alerts.json-*"))
	if len(rotated) != 1 || string(read(t, rotated[0])) != old {
		t.Errorf("rotated files %v: want one holding the old line\n%s", rotated, out)
	}
}

// ---- Dockerfile ----

// dockerLines returns the Dockerfile's instructions, continuation lines
// joined and comments dropped.
func dockerLines(t *testing.T, b []byte) []string {
	t.Helper()
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		s := strings.TrimSpace(l)
		if cur == "" && (s == "" || strings.HasPrefix(s, "#")) {
			continue
		}
		if c, ok := strings.CutSuffix(s, "\\"); ok {
			cur += c + " "
			continue
		}
		lines = append(lines, cur+s)
		cur = ""
	}
	if cur != "" {
		t.Fatalf("Dockerfile ends inside a continued line: %q", cur)
	}
	return lines
}

func TestDockerfile(t *testing.T) {
	lines := dockerLines(t, read(t, "../Dockerfile"))
	// File capabilities on the binary, set in the final stage after the
	// COPY (a RUN there keeps the xattr in its layer), so that the image's
	// non-root user can open capture sockets.
	setcapAfterCopy, copied := false, false
	for _, l := range lines {
		if strings.HasPrefix(l, "COPY --from=build") {
			copied = true
		}
		if copied && strings.HasPrefix(l, "RUN") && strings.Contains(l, "setcap cap_net_raw,cap_net_admin=ep /usr/local/bin/phonehome") {
			setcapAfterCopy = true
		}
	}
	if !setcapAfterCopy {
		t.Error("the final stage does not set file capabilities on the binary after copying it")
	}
	known := []string{"FROM", "RUN", "COPY", "ADD", "ARG", "ENV", "USER", "WORKDIR", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL", "HEALTHCHECK", "STOPSIGNAL", "SHELL"}
	var stages []string
	lastUser := ""
	sawCGO := false
	for _, l := range lines {
		f := strings.Fields(l)
		instr := strings.ToUpper(f[0])
		if !slices.Contains(known, instr) {
			t.Errorf("unknown instruction %q", l)
		}
		switch instr {
		case "FROM":
			stages = append(stages, l)
			lastUser = ""
			if !strings.Contains(f[1], ":") && !strings.Contains(f[1], "$") {
				t.Errorf("%q: image not pinned to a tag", l)
			}
		case "ADD":
			if strings.Contains(l, "://") {
				t.Errorf("%q: ADD of a URL", l)
			}
		case "USER":
			lastUser = f[1]
		case "RUN":
			if strings.Contains(l, "CGO_ENABLED=0") && strings.Contains(l, "go build") {
				sawCGO = true
			}
		}
		if len(stages) == 0 && instr != "ARG" {
			t.Errorf("%q before the first FROM", l)
		}
	}
	if len(stages) < 2 || !regexp.MustCompile(`(?i)^FROM golang:\S+ AS build$`).MatchString(stages[0]) {
		t.Errorf("stages %q: want a golang build stage named build, then a runtime stage", stages)
	}
	if !sawCGO {
		t.Error("no RUN CGO_ENABLED=0 go build")
	}
	if lastUser == "" || lastUser == "root" || lastUser == "0" || strings.HasPrefix(lastUser, "0:") || strings.HasPrefix(lastUser, "root:") {
		t.Errorf("runtime stage USER %q: want a non-root user", lastUser)
	}
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "COPY --from=build ") }) {
		t.Error("the runtime stage does not COPY --from=build")
	}

	// .dockerignore keeps what go build ./sensor needs.
	ignore := map[string]bool{}
	for _, l := range strings.Split(string(read(t, "../.dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignore[strings.Trim(l, "/")] = true
		}
	}
	for _, need := range []string{"go.mod", "go.sum", "sensor", "rules", "geo", "metrics"} {
		if ignore[need] {
			t.Errorf(".dockerignore leaves out %s, which the build needs", need)
		}
	}
	if !ignore[".git"] {
		t.Error(".dockerignore keeps .git")
	}
}

// ---- compose ----

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       map[string]string `yaml:"build"`
	NetworkMode string            `yaml:"network_mode"`
	User        string            `yaml:"user"`
	CapAdd      []string          `yaml:"cap_add"`
	CapDrop     []string          `yaml:"cap_drop"`
	Command     []string          `yaml:"command"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Environment map[string]string `yaml:"environment"`
	ExtraHosts  []string          `yaml:"extra_hosts"`
	DependsOn   []string          `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
	Restart     string            `yaml:"restart"`
	ReadOnly    bool              `yaml:"read_only"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	dec := yaml3.NewDecoder(bytes.NewReader(read(t, "compose/compose.yaml")))
	dec.KnownFields(true) // a misspelt key fails
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// mount is a short-syntax volume: host path (relative to compose/) or a
// named volume, and its target.
type mount struct{ src, dst string }

func mounts(t *testing.T, c composeFile, svc string) []mount {
	t.Helper()
	var ms []mount
	for _, v := range c.Services[svc].Volumes {
		p := strings.Split(v, ":")
		if len(p) < 2 || len(p) > 3 || (len(p) == 3 && p[2] != "ro" && p[2] != "rw") {
			t.Errorf("%s: volume %q is not SRC:DST[:ro]", svc, v)
			continue
		}
		ms = append(ms, mount{p[0], p[1]})
	}
	return ms
}

func isHostPath(src string) bool { return strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") }

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	for _, want := range []string{"phonehome", "phonehome-replay", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for name, s := range c.Services {
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		} else if i := strings.LastIndex(s.Image, ":"); i < 0 || strings.Contains(s.Image[i:], "/") || s.Image[i+1:] == "latest" {
			t.Errorf("%s: image %q not pinned to a tag", name, s.Image)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join("compose", s.Build["context"], s.Build["dockerfile"])); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		}
		for _, m := range mounts(t, c, name) {
			if isHostPath(m.src) {
				if _, err := os.Stat(filepath.Join("compose", m.src)); err != nil {
					t.Errorf("%s: mounts %s: %v", name, m.src, err)
				}
			} else if _, ok := c.Volumes[m.src]; !ok {
				t.Errorf("%s: named volume %s not declared", name, m.src)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("%s: depends on unknown service %s", name, d)
			}
		}
	}

	live := c.Services["phonehome"]
	if live.NetworkMode != "host" {
		t.Errorf("phonehome: network_mode %q, want host", live.NetworkMode)
	}
	for _, cp := range []string{"NET_RAW", "NET_ADMIN"} {
		if !slices.Contains(live.CapAdd, cp) {
			t.Errorf("phonehome: cap_add lacks %s", cp)
		}
	}
	if !slices.Contains(live.CapDrop, "ALL") {
		t.Error("phonehome: cap_drop ALL missing")
	}
	cmd := strings.Join(live.Command, " ")
	if !strings.Contains(cmd, "--interface=") || !strings.Contains(cmd, "--run-as=phonehome") {
		t.Errorf("phonehome: command %q: want --interface and --run-as=phonehome", cmd)
	}
	replay := c.Services["phonehome-replay"]
	if !strings.Contains(strings.Join(replay.Command, " "), "--read=/captures/") || len(replay.CapAdd) > 0 {
		t.Errorf("phonehome-replay: want --read=/captures/… and no capability: %q %q", replay.Command, replay.CapAdd)
	}
	for _, m := range mounts(t, c, "phonehome-replay") {
		if m.dst == "/captures" && isHostPath(m.src) {
			pcap := filepath.Join("compose", m.src, "demo.pcap")
			if _, err := os.Stat(pcap); err != nil {
				t.Errorf("phonehome-replay: %v", err)
			}
		}
	}

	// The sensor's commands are flags `phonehome run` accepts.
	bin := buildSensor(t)
	for _, name := range []string{"phonehome", "phonehome-replay"} {
		argv := slices.Clone(c.Services[name].Command)
		for i, a := range argv {
			argv[i] = regexp.MustCompile(`\$\{(\w+):-([^}]*)\}`).ReplaceAllString(a, "$2")
		}
		run(t, bin, append(argv, "--help")...)
	}
}

// stage copies the host files a service mounts under root into a temporary
// directory laid out as in the container, and returns that directory.
func stage(t *testing.T, c composeFile, svc, root string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range mounts(t, c, svc) {
		rel, ok := strings.CutPrefix(m.dst, root+"/")
		if !ok || !isHostPath(m.src) {
			continue
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, read(t, filepath.Join("compose", m.src)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func flagValue(cmd []string, name string) string {
	for _, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestComposePrometheus: promtool check config on the configuration the
// compose Prometheus is started with, its rule files where they are
// mounted; it scrapes job phonehome and sends to the compose Alertmanager.
func TestComposePrometheus(t *testing.T) {
	c := loadCompose(t)
	cfg, ok := strings.CutPrefix(flagValue(c.Services["prometheus"].Command, "--config.file"), "/etc/prometheus/")
	if !ok {
		t.Fatal("prometheus: --config.file is not under /etc/prometheus")
	}
	dir := stage(t, c, "prometheus", "/etc/prometheus")
	var conf struct {
		RuleFiles []string `yaml:"rule_files"`
		Alerting  struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml3.Unmarshal(read(t, filepath.Join(dir, cfg)), &conf); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(conf.ScrapeConfigs, func(s struct {
		JobName string `yaml:"job_name"`
	}) bool {
		return s.JobName == "phonehome"
	}) {
		t.Error("no scrape job phonehome (the alert rules select it)")
	}
	if len(conf.Alerting.Alertmanagers) == 0 || len(conf.Alerting.Alertmanagers[0].StaticConfigs) == 0 ||
		!slices.Contains(conf.Alerting.Alertmanagers[0].StaticConfigs[0].Targets, "alertmanager:9093") {
		t.Error("alerts are not sent to alertmanager:9093")
	}
	if !slices.Contains(conf.RuleFiles, "phonehome.rules.yml") {
		t.Errorf("rule_files %q lacks phonehome.rules.yml", conf.RuleFiles)
	}
	if !bytes.Equal(read(t, filepath.Join(dir, "phonehome.rules.yml")), read(t, "prometheus/phonehome.rules.yml")) {
		t.Error("the mounted rules are not deploy/prometheus/phonehome.rules.yml")
	}
	out := run(t, tool(t, "promtool", "prometheus"), "check", "config", filepath.Join(dir, cfg))
	if !strings.Contains(out, "SUCCESS") || strings.Contains(out, "FAILED") {
		t.Errorf("promtool check config:\n%s", out)
	}
}

func TestComposeAlertmanager(t *testing.T) {
	c := loadCompose(t)
	cfg, ok := strings.CutPrefix(flagValue(c.Services["alertmanager"].Command, "--config.file"), "/etc/alertmanager/")
	if !ok {
		t.Fatal("alertmanager: --config.file is not under /etc/alertmanager")
	}
	dir := stage(t, c, "alertmanager", "/etc/alertmanager")
	out := run(t, tool(t, "amtool", "prometheus-alertmanager"), "check-config", filepath.Join(dir, cfg))
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("amtool check-config:\n%s", out)
	}
}

// TestComposeGrafana: the provisioned datasource is the compose Prometheus
// and the dashboard provider's path is where deploy/grafana/phonehome.json
// is mounted.
func TestComposeGrafana(t *testing.T) {
	c := loadCompose(t)
	var provDir, dsDir, dashboard string
	for _, m := range mounts(t, c, "grafana") {
		switch {
		case m.dst == "/etc/grafana/provisioning/dashboards":
			provDir = filepath.Join("compose", m.src)
		case m.dst == "/etc/grafana/provisioning/datasources":
			dsDir = filepath.Join("compose", m.src)
		case filepath.Clean(filepath.Join("compose", m.src)) == filepath.Join("grafana", "phonehome.json"):
			dashboard = m.dst
		}
	}
	if provDir == "" || dsDir == "" || dashboard == "" {
		t.Fatalf("grafana mounts: provisioning/dashboards %q, provisioning/datasources %q, phonehome.json → %q", provDir, dsDir, dashboard)
	}
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, Access, UID string
			IsDefault                    bool `yaml:"isDefault"`
			Editable                     bool `yaml:"editable"`
		} `yaml:"datasources"`
	}
	dec := yaml3.NewDecoder(bytes.NewReader(read(t, filepath.Join(dsDir, "prometheus.yml"))))
	dec.KnownFields(true)
	if err := dec.Decode(&ds); err != nil {
		t.Fatal(err)
	}
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasource provisioning: %+v", ds)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml3.Unmarshal(read(t, filepath.Join(provDir, "phonehome.yml")), &prov); err != nil {
		t.Fatal(err)
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path != filepath.Dir(dashboard) {
		t.Errorf("dashboard provider %+v does not load %s", prov, dashboard)
	}
	if home := c.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" && home != dashboard {
		t.Errorf("home dashboard %s is not the mounted %s", home, dashboard)
	}
}

// ---- Kubernetes ----

// strict decodes a manifest into a k8s.io/api type, refusing unknown or
// duplicate fields.
func strict(t *testing.T, path string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(read(t, path), into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestKubernetesCore(t *testing.T) {
	var ns corev1.Namespace
	strict(t, "kubernetes/namespace.yaml", &ns)
	if ns.Kind != "Namespace" || ns.APIVersion != "v1" || ns.Name != "phonehome" {
		t.Errorf("namespace: %s %s %s", ns.APIVersion, ns.Kind, ns.Name)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Error("namespace not labelled pod-security.kubernetes.io/enforce: privileged")
	}

	var cm corev1.ConfigMap
	strict(t, "kubernetes/configmap.yaml", &cm)
	if cm.Kind != "ConfigMap" || cm.Namespace != "phonehome" {
		t.Errorf("configmap: %s in %q", cm.Kind, cm.Namespace)
	}

	var ds appsv1.DaemonSet
	strict(t, "kubernetes/daemonset.yaml", &ds)
	if ds.Kind != "DaemonSet" || ds.APIVersion != "apps/v1" || ds.Namespace != "phonehome" {
		t.Errorf("daemonset: %s %s in %q", ds.APIVersion, ds.Kind, ds.Namespace)
	}
	pod := ds.Spec.Template.Spec
	if ds.Spec.Selector == nil || !reflect.DeepEqual(ds.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": ds.Spec.Template.Labels["app.kubernetes.io/name"]}) {
		t.Error("daemonset selector does not match its pod labels")
	}
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Error("daemonset: want hostNetwork and dnsPolicy ClusterFirstWithHostNet")
	}
	if pod.NodeSelector["phonehome.io/tap"] != "true" {
		t.Error("daemonset: no nodeSelector phonehome.io/tap: \"true\"")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("daemonset: %d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	sc := ctr.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("daemonset: no securityContext.capabilities")
	}
	for _, cp := range []corev1.Capability{"NET_RAW", "NET_ADMIN"} {
		if !slices.Contains(sc.Capabilities.Add, cp) {
			t.Errorf("daemonset: capabilities.add lacks %s", cp)
		}
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("daemonset: want capabilities.drop ALL, allowPrivilegeEscalation false, readOnlyRootFilesystem true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("daemonset: privileged container")
	}
	var port int32
	for _, p := range ctr.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if port != 17466 {
		t.Errorf("daemonset: metrics port %d, want 17466", port)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || (p.HTTPGet.Port.StrVal != "metrics" && p.HTTPGet.Port.IntVal != 17466) {
			t.Errorf("daemonset: %s probe %+v, want GET %s on the metrics port", name, p, path)
		}
	}
	probe("readiness", ctr.ReadinessProbe, "/-/ready")
	probe("liveness", ctr.LivenessProbe, "/-/healthy")
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ctr.Resources.Limits[r]; !ok {
			t.Errorf("daemonset: no %s limit", r)
		}
		if _, ok := ctr.Resources.Requests[r]; !ok {
			t.Errorf("daemonset: no %s request", r)
		}
	}
	state := ""
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == "/var/lib/phonehome" {
			state = m.Name
		}
	}
	if !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.Name == state && (v.HostPath != nil || v.PersistentVolumeClaim != nil)
	}) {
		t.Error("daemonset: /var/lib/phonehome is not a hostPath or PVC volume")
	}
	// Every $(VAR) in args is defined, and the args are flags phonehome
	// run accepts.
	defined := map[string]bool{}
	for _, e := range ctr.Env {
		defined[e.Name] = true
	}
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef == nil || ef.ConfigMapRef.Name != cm.Name {
			t.Errorf("daemonset: envFrom %+v is not the ConfigMap %s", ef, cm.Name)
		}
		for k := range cm.Data {
			defined[k] = true
		}
	}
	argv := slices.Clone(ctr.Args)
	for i, a := range argv {
		argv[i] = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(a, func(v string) string {
			name := v[2 : len(v)-1]
			if !defined[name] {
				t.Errorf("daemonset: args use undefined $(%s)", name)
			}
			if val, ok := cm.Data[name]; ok {
				return val
			}
			return "x"
		})
	}
	if len(argv) == 0 || argv[0] != "run" || !strings.Contains(strings.Join(argv, " "), "--interface=") {
		t.Errorf("daemonset: args %q: want run --interface=…", argv)
	}
	run(t, buildSensor(t), append(argv, "--help")...)

	var svc corev1.Service
	strict(t, "kubernetes/service.yaml", &svc)
	if svc.Kind != "Service" || svc.Namespace != "phonehome" || !reflect.DeepEqual(svc.Spec.Selector, ds.Spec.Selector.MatchLabels) {
		t.Errorf("service: %s in %q, selector %v", svc.Kind, svc.Namespace, svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != 17466 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}
}

// crd reads a custom resource, checking apiVersion, kind and metadata.
func crd(t *testing.T, path, kind string) map[string]any {
	t.Helper()
	var obj map[string]any
	strict(t, path, &obj)
	if obj["apiVersion"] != "monitoring.coreos.com/v1" || obj["kind"] != kind {
		t.Errorf("%s: %v %v, want monitoring.coreos.com/v1 %s", path, obj["apiVersion"], obj["kind"], kind)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta["name"] == nil || meta["namespace"] != "phonehome" {
		t.Errorf("%s: metadata %v", path, meta)
	}
	for k := range obj {
		if !slices.Contains([]string{"apiVersion", "kind", "metadata", "spec"}, k) {
			t.Errorf("%s: unknown top-level field %s", path, k)
		}
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no spec", path)
	}
	return spec
}

func TestKubernetesServiceMonitor(t *testing.T) {
	spec := crd(t, "kubernetes/servicemonitor.yaml", "ServiceMonitor")
	var svc corev1.Service
	strict(t, "kubernetes/service.yaml", &svc)
	sel, _ := spec["selector"].(map[string]any)
	ml, _ := sel["matchLabels"].(map[string]any)
	for k, v := range ml {
		if svc.Labels[k] != v {
			t.Errorf("servicemonitor selects %s=%v, the Service has %q", k, v, svc.Labels[k])
		}
	}
	if len(ml) == 0 {
		t.Error("servicemonitor: empty selector.matchLabels")
	}
	eps, _ := spec["endpoints"].([]any)
	if len(eps) == 0 {
		t.Fatal("servicemonitor: no endpoints")
	}
	ep, _ := eps[0].(map[string]any)
	if ep["port"] != "metrics" {
		t.Errorf("servicemonitor endpoint port %v, want metrics", ep["port"])
	}
	// The alert rules select job="phonehome".
	if !strings.Contains(fmt.Sprint(ep["relabelings"]), "targetLabel:job") && svc.Name != "phonehome" {
		t.Error("servicemonitor: the job label will not be phonehome")
	}
}

const ruleHeader = `# Generated from deploy/prometheus/phonehome.rules.yml by
# go test ./deploy -run TestKubernetesPrometheusRule -update: do not edit.
# prometheus-operator's PrometheusRule; its ServiceMonitor (servicemonitor.yaml)
# gives the sensors job="phonehome", which the rules select.
`

func TestKubernetesPrometheusRule(t *testing.T) {
	var rules struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.UnmarshalStrict(read(t, "prometheus/phonehome.rules.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	if *update {
		obj := map[string]any{
			"apiVersion": "monitoring.coreos.com/v1",
			"kind":       "PrometheusRule",
			"metadata": map[string]any{
				"name":      "phonehome",
				"namespace": "phonehome",
				"labels":    map[string]any{"app.kubernetes.io/name": "phonehome"},
			},
			"spec": map[string]any{"groups": rules.Groups},
		}
		var buf bytes.Buffer
		enc := yaml3.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(obj); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("kubernetes/prometheusrule.yaml", append([]byte(ruleHeader), buf.Bytes()...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := crd(t, "kubernetes/prometheusrule.yaml", "PrometheusRule")
	if !reflect.DeepEqual(spec["groups"], rules.Groups) {
		t.Error("kubernetes/prometheusrule.yaml is out of date: go test ./deploy -run TestKubernetesPrometheusRule -update")
	}
	if len(rules.Groups) == 0 {
		t.Error("no rule groups")
	}
}

// TestKubernetesKustomization: kustomization.yaml lists every manifest.
func TestKubernetesKustomization(t *testing.T) {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	strict(t, "kubernetes/kustomization.yaml", &k)
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Error(err)
		}
	}
}
