package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/phonehome-sensor/phonehome/metrics"
)

const committed = "../phonehome.json"

// TestCommittedDashboard: deploy/grafana/phonehome.json is what the
// generator writes. After changing the generator, run
// go run ./deploy/grafana/gen -o deploy/grafana/phonehome.json
func TestCommittedDashboard(t *testing.T) {
	got, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the generator's output: run go run ./deploy/grafana/gen -o deploy/grafana/phonehome.json", committed)
	}
}

// TestDashboardQueries: the dashboard has the datasource, job and
// instance variables, and its queries use only metrics the sensor
// exposes (and up), always through the job and instance variables.
func TestDashboardQueries(t *testing.T) {
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct{ Name, Type string }
		}
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Equal(vars, []string{"datasource", "job", "instance"}) {
		t.Errorf("variables %v, want datasource, job, instance", vars)
	}
	known := metrics.Names()
	name := regexp.MustCompile(`\b(phonehome_[a-z_]+|up)\{`)
	var n int
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			n++
			ms := name.FindAllStringSubmatch(tg.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("panel %q: query %q reads no metric", p.Title, tg.Expr)
			}
			for _, m := range ms {
				if m[1] != "up" && !slices.Contains(known, m[1]) {
					t.Errorf("panel %q: %s is not a phonehome metric", p.Title, m[1])
				}
			}
			if c := regexp.MustCompile(`\{[^}]*\}`).FindAllString(tg.Expr, -1); len(c) != len(ms) {
				t.Errorf("panel %q: query %q: a selector without the job and instance variables", p.Title, tg.Expr)
			} else {
				for _, s := range c {
					if s != `{job=~"$job", instance=~"$instance"}` {
						t.Errorf("panel %q: selector %s", p.Title, s)
					}
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("%d queries: the dashboard lost its panels", n)
	}
}
