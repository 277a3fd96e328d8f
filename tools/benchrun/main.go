// Command benchrun is `make bench`: it generates a realistic capture with
// the shared generator (cached), builds phonehome and the floor program,
// runs them alternately in pairs, prints per tool the median wall and CPU
// seconds, packets/s, peak RSS and the paired ratio to `floor -mode read`,
// and checks phonehome's hosts and names against the generator's truth,
// exiting 1 when they differ. Ratios, not rates: the machines are shared.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type result struct {
	wall, cpu time.Duration
	rssKiB    int64
}

type tool struct {
	name string
	args []string
	runs []result
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("benchrun: ")
	packets := flag.Int("packets", 2_000_000, "packets in the generated capture")
	seed := flag.Uint("seed", 1, "generator seed")
	pairs := flag.Int("pairs", 5, "rounds of alternating runs")
	shared := flag.String("shared", "../shared", "the team's shared directory (bench/gen, bench/floor)")
	cache := flag.String("cache", ".cache/bench", "where captures and binaries are kept (git-ignored)")
	profile := flag.Bool("profile", false, "also write CPU and heap profiles of one phonehome run (1 worker) into the cache")
	flag.Parse()

	must(os.MkdirAll(*cache, 0o755))
	abs := func(p string) string { a, err := filepath.Abs(p); must(err); return a }
	cacheDir := abs(*cache)
	gen := filepath.Join(cacheDir, "gen")
	floor := filepath.Join(cacheDir, "floor")
	phonehome := filepath.Join(cacheDir, "phonehome")
	build(filepath.Join(*shared, "bench", "gen"), gen)
	build(filepath.Join(*shared, "bench", "floor"), floor)
	build("./sensor", phonehome)

	pcap := filepath.Join(cacheDir, fmt.Sprintf("bench-%d-seed%d.pcap", *packets, *seed))
	truthPath := strings.TrimSuffix(pcap, ".pcap") + ".truth.json"
	if _, err := os.Stat(truthPath); err != nil {
		log.Printf("generating %s", pcap)
		run(gen, "-packets", fmt.Sprint(*packets), "-seed", fmt.Sprint(*seed), "-o", pcap, "-truth", truthPath)
	}
	alerts := filepath.Join(cacheDir, "alerts.json")
	common := []string{"run", "-r", pcap, "--home-net", "10.0.0.0/8", "--home-net", "2001:db8:4000::/48",
		"--rules.disable", "russian-hosted", "--storage.path", "", "--alerts.out", alerts, "--log.level", "error"}
	tools := []*tool{
		{name: "floor read", args: []string{floor, "-mode", "read", pcap}},
		{name: "floor decode", args: []string{floor, "-mode", "decode", pcap}},
		{name: "phonehome -w1", args: append([]string{phonehome}, append(common, "--workers", "1")...)},
		{name: "phonehome -w2", args: append([]string{phonehome}, append(common, "--workers", "2")...)},
	}
	for p := 0; p < *pairs; p++ {
		for _, t := range tools {
			// Outputs append (logrotate reopens them): start each run empty.
			if err := os.Remove(alerts); err != nil && !errors.Is(err, os.ErrNotExist) {
				log.Fatal(err)
			}
			t.runs = append(t.runs, measure(t.args))
			if strings.HasPrefix(t.name, "phonehome") {
				checkTruth(alerts, truthPath, t.name)
			}
		}
	}
	report(tools, *packets)
	if *profile {
		cpu, mem := filepath.Join(cacheDir, "cpu.pprof"), filepath.Join(cacheDir, "heap.pprof")
		measure(append([]string{phonehome}, append(common, "--workers", "1", "--debug.cpuprofile", cpu, "--debug.memprofile", mem)...))
		fmt.Printf("\nprofiles: go tool pprof %s %s\n          go tool pprof %s %s\n", phonehome, cpu, phonehome, mem)
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func build(dir, out string) {
	cmd := exec.Command("go", "build", "-o", out, ".")
	if dir == "./sensor" {
		cmd = exec.Command("go", "build", "-trimpath", "-o", out, "./sensor")
	} else {
		cmd.Dir = dir
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("build %s: %v\n%s", dir, err, out)
	}
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	must(cmd.Run())
}

// measure runs a command and returns its wall time, CPU time and peak RSS.
func measure(args []string) result {
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return result{wall: wall, cpu: cpu, rssKiB: ru.Maxrss}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(tools []*tool, packets int) {
	base := tools[0]
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "tool\tmedian wall s\tmedian CPU s\tpackets/s\tpeak RSS MiB\t× floor read (paired median)\t\n")
	for _, t := range tools {
		var walls, cpus []time.Duration
		var ratios []float64
		var rss int64
		for i, r := range t.runs {
			walls = append(walls, r.wall)
			cpus = append(cpus, r.cpu)
			ratios = append(ratios, r.wall.Seconds()/base.runs[i].wall.Seconds())
			rss = max(rss, r.rssKiB)
		}
		sort.Float64s(ratios)
		mw := median(walls)
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%.0f\t%.0f\t%.2f\t\n", t.name, mw.Seconds(), median(cpus).Seconds(),
			float64(packets)/mw.Seconds(), float64(rss)/1024, ratios[len(ratios)/2])
	}
	w.Flush()
}

// checkTruth compares the hosts and names of the alerts with the truth.
func checkTruth(alertsPath, truthPath, who string) {
	var truth struct {
		Matches struct {
			ClientIPList []string                   `json:"client_ip_list"`
			ByName       map[string]json.RawMessage `json:"by_name"`
		} `json:"matches"`
	}
	b, err := os.ReadFile(truthPath)
	must(err)
	must(json.Unmarshal(b, &truth))
	f, err := os.Open(alertsPath)
	must(err)
	defer f.Close()
	hosts, names := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			Phonehome struct {
				Host string `json:"host"`
			} `json:"phonehome"`
			Threat struct {
				Enrichments []struct {
					Matched struct {
						Atomic string `json:"atomic"`
						Field  string `json:"field"`
					} `json:"matched"`
				} `json:"enrichments"`
			} `json:"threat"`
		}
		must(json.Unmarshal(sc.Bytes(), &ev))
		if ev.Phonehome.Host != "" {
			hosts[ev.Phonehome.Host] = true
		}
		for _, e := range ev.Threat.Enrichments {
			if strings.Contains(e.Matched.Atomic, ".") && !strings.Contains(e.Matched.Field, ".ip") {
				names[e.Matched.Atomic] = true
			}
		}
	}
	var problems []string
	want := map[string]bool{}
	for _, h := range truth.Matches.ClientIPList {
		want[h] = true
		if !hosts[h] {
			problems = append(problems, "host missed: "+h)
		}
	}
	for h := range hosts {
		if !want[h] {
			problems = append(problems, "host not in the truth: "+h)
		}
	}
	for n := range truth.Matches.ByName {
		if !names[n] {
			problems = append(problems, "name missed: "+n)
		}
	}
	for n := range names {
		if _, ok := truth.Matches.ByName[n]; !ok {
			problems = append(problems, "name not in the truth: "+n)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		log.Fatal(errors.New(who + " differs from the generator's truth:\n  " + strings.Join(problems, "\n  ")))
	}
}
