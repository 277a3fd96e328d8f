// Package prometheus holds the tests of the Prometheus rules and example
// configurations beside it, run with the real Debian promtool, amtool,
// prometheus and prometheus-alertmanager.
package prometheus

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tool returns the path of a Debian binary, or skips the test.
func tool(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skipf("%s not found: install Debian's prometheus and prometheus-alertmanager packages (make deps)", strings.Join(names, " or "))
	return ""
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := run(t, tool(t, "promtool"), "check", "rules", "phonehome.rules.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules: %s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out := run(t, tool(t, "promtool"), "test", "rules", "phonehome.rules.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}
}

func TestExampleConfigs(t *testing.T) {
	run(t, tool(t, "promtool"), "check", "config", "prometheus.yml")
	run(t, tool(t, "amtool"), "check-config", "alertmanager.yml")
}

// TestAlertsTested: every alert of the rules file exists, has a summary
// and a description, and has a unit test.
func TestAlertsTested(t *testing.T) {
	rulesFile, err := os.ReadFile("phonehome.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("phonehome.rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, m := range regexp.MustCompile(`(?m)^\s+- alert: (\S+)`).FindAllStringSubmatch(string(rulesFile), -1) {
		alerts = append(alerts, m[1])
	}
	want := []string{"PhonehomeHostStillPhoningHome", "PhonehomeNewHostPhoningHome", "PhonehomeCaptureDropping",
		"PhonehomeSensorDown", "PhonehomeUnseenRatioHigh", "PhonehomeGeoDatabaseStale", "PhonehomeReloadFailed"}
	for _, a := range want {
		if !slices.Contains(alerts, a) {
			t.Errorf("alert %s missing from phonehome.rules.yml", a)
		}
	}
	for _, a := range alerts {
		if !regexp.MustCompile(`alertname: ` + a + `\n\s+exp_alerts:\n\s+- exp_labels`).Match(tests) {
			t.Errorf("alert %s: no test in phonehome.rules.test.yml expects it to fire", a)
		}
	}
	if n := strings.Count(string(rulesFile), "summary:"); n != len(alerts) {
		t.Errorf("%d summaries for %d alerts", n, len(alerts))
	}
	if n := strings.Count(string(rulesFile), "description:"); n != len(alerts) {
		t.Errorf("%d descriptions for %d alerts", n, len(alerts))
	}
}
