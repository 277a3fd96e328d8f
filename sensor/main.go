// Command phonehome is a passive network sensor that finds the hosts still
// talking to a banned security vendor's infrastructure (Kaspersky by
// default) in DNS, TLS ClientHello and plain-HTTP traffic.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"

	"github.com/phonehome-sensor/phonehome/geo"
	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/pipeline"
)

// Exit codes (DESIGN.md): 0 success, 1 runtime failure, 2 bad usage,
// config, rules or input.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// version is set by the build (-ldflags "-X main.version=…").
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks errors that exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// args holds every flag; flags are defined only here.
type args struct {
	files            []string
	alertsOut        string
	outputs          []string
	workers          int
	homeNets         []string
	ruleFiles        []string
	noBuiltin        bool
	dedupWindow      time.Duration
	observerName     string
	flowMax          int
	helloMax         units.Base2Bytes
	geoCountry       string
	disabledProfiles []string
	geoNote          string // for the summary: the databases in use and their build dates
	storage          storageArgs
	web              webArgs
	live             liveArgs
	cpuProfile       string
	reopenAlerts     func() error // reopens the file outputs
	outputDrain      time.Duration
	memLimit         units.Base2Bytes
	memProfile       string
	report           reportArgs
	geoASN           string
	summaryHosts     int
	logLevel         string
	testInputs       []string
	testJSON         bool
}

func run(argv []string, stdout, stderr io.Writer) int {
	var a args
	app := kingpin.New("phonehome", "Passive network sensor: finds hosts that still phone home to a banned vendor's infrastructure.")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	exited := -1
	app.Terminate(func(code int) {
		if exited < 0 {
			exited = code
		}
	})
	app.HelpFlag.Short('h')
	app.Flag("log.level", "Log level: debug, info, warn, error.").Default("info").EnumVar(&a.logLevel, "debug", "info", "warn", "error")

	addCommon := func(c *kingpin.CmdClause) {
		c.Flag("read", "Capture file to read (pcap or pcapng); repeatable, read in order. Excludes -i.").Short('r').ExistingFilesVar(&a.files)
		addLiveFlags(c, &a.live)
		c.Flag("workers", "Worker goroutines; packets are sharded by a symmetric flow hash.").Default("1").IntVar(&a.workers)
		c.Flag("rules", "Rules file (YAML profile); repeatable. Built-in profiles stay on unless --rules.no-builtin.").StringsVar(&a.ruleFiles)
		c.Flag("rules.no-builtin", "Do not load the built-in profiles.").BoolVar(&a.noBuiltin)
		c.Flag("rules.disable", "Leave out one built-in profile by id (e.g. russian-hosted); repeatable.").StringsVar(&a.disabledProfiles)
		c.Flag("home-net", "Network whose hosts are inventoried (CIDR); repeatable. Default: RFC 1918, RFC 6598, link-local, ULA.").StringsVar(&a.homeNets)
		c.Flag("flow.max", "Flow table capacity (all workers together).").Default("262144").IntVar(&a.flowMax)
		c.Flag("memory.limit", "Soft memory limit for the Go runtime (GC works harder near it); 0 derives it from --flow.max and --workers; $GOMEMLIMIT wins.").Default("0").BytesVar(&a.memLimit)
		c.Flag("reassembly.hello-max", "Bytes gathered for one TLS or QUIC ClientHello before giving up (counted as unseen: buffer_cap).").Default("16KiB").BytesVar(&a.helloMax)
		c.Flag("geoip.country", "Country database (mmdb: GeoLite2/GeoIP2 Country or City, DB-IP, ip-location-db). Default: the embedded one.").StringVar(&a.geoCountry)
		c.Flag("geoip.asn", "ASN database (mmdb: GeoLite2 ASN, DB-IP ASN, ip-location-db asn). Default: none (no ASN rules).").StringVar(&a.geoASN)
		c.Flag("observer.name", "Sensor name in events (observer.hostname). Default: the host name.").StringVar(&a.observerName)
	}
	runCmd := app.Command("run", "Read captures, match, write alerts, keep the inventory, print a summary.")
	addCommon(runCmd)
	runCmd.Flag("alerts.out", "Write alert events (ECS JSON lines) to this file; shorthand for --output ecs:PATH.").StringVar(&a.alertsOut)
	runCmd.Flag("output", "Event output, repeatable: ecs:PATH, ecs:- (stdout), eve:PATH, syslog+udp|tcp|tls://HOST:PORT, kafka://BROKER[,BROKER]/TOPIC, alertmanager+http(s)://HOST:PORT, webhook+https://URL; options after ?, e.g. ?observations=0.1 (see README). Default ecs:-.").StringsVar(&a.outputs)
	runCmd.Flag("output.drain-timeout", "At the end of a run, how long outputs may take to deliver what they hold.").Default("10s").DurationVar(&a.outputDrain)
	runCmd.Flag("alert.dedup-window", "One alert per host × rule per window of packet time.").Default("24h").DurationVar(&a.dedupWindow)
	addStorageFlags(runCmd, &a.storage, true)
	addWebFlags(runCmd, &a.web)
	runCmd.Flag("debug.cpuprofile", "Write a CPU profile of the run to this file.").Hidden().StringVar(&a.cpuProfile)
	runCmd.Flag("debug.memprofile", "Write a heap profile at the end of the run to this file.").Hidden().StringVar(&a.memProfile)
	runCmd.Flag("summary.hosts", "Hosts listed in the summary on stderr.").Default("20").IntVar(&a.summaryHosts)

	inspectCmd := app.Command("inspect", "Print every observation (DNS message, ClientHello, HTTP request) as one ECS JSON line.")
	addCommon(inspectCmd)

	rulesCmd := app.Command("rules", "Rules: check, list, test, export, import.")
	rulesCheck := rulesCmd.Command("check", "Check rules files (and the built-in profiles).")
	rulesCheck.Arg("file", "Rules files.").StringsVar(&a.ruleFiles)
	rulesList := rulesCmd.Command("list", "List the rules in force.")
	rulesList.Flag("rules", "Rules file; repeatable.").StringsVar(&a.ruleFiles)
	rulesList.Flag("rules.no-builtin", "Do not load the built-in profiles.").BoolVar(&a.noBuiltin)
	rulesTest := rulesCmd.Command("test", "Show which rules names, addresses or whole contacts match, and why.")
	rulesTest.Flag("rules", "Rules file; repeatable.").StringsVar(&a.ruleFiles)
	rulesTest.Flag("rules.no-builtin", "Do not load the built-in profiles.").BoolVar(&a.noBuiltin)
	rulesTest.Flag("json", "Print JSON.").BoolVar(&a.testJSON)
	rulesTest.Arg("input", "Names, addresses, AS numbers (AS200107), country=RU, or contacts such as name=dnl-01.geo.kaspersky.com,addr=8.8.8.8,port=53/udp.").Required().StringsVar(&a.testInputs)
	var rio rulesIOArgs
	rulesExport := rulesCmd.Command("export", "Write the rules of the built-in profiles and the given files for another tool (stdout).")
	rulesExport.Flag("format", "zeek-intel, suricata, hosts or rpz.").Required().EnumVar(&rio.format, rules.ExportFormats()...)
	rulesExport.Flag("profile", "Export only this profile (id); repeatable. Default: every profile loaded.").StringsVar(&rio.profiles)
	rulesExport.Flag("serial", "SOA serial of an rpz zone. Default: the current Unix time.").Uint32Var(&rio.serial)
	rulesExport.Arg("file", "Rules files, loaded after the built-in profiles.").StringsVar(&rio.files)
	rulesImport := rulesCmd.Command("import", "Turn a feed of names and addresses into a profile (YAML on stdout).")
	rulesImport.Flag("format", "zeek-intel, hosts, stix, v2fly or plain.").Required().EnumVar(&rio.format, rules.ImportFormats()...)
	rulesImport.Flag("id", "Profile and rule id, [a-z0-9-]+.").Required().StringVar(&rio.id)
	rulesImport.Flag("name", "Profile and rule name.").Required().StringVar(&rio.name)
	rulesImport.Flag("category", "Category of the rule (update, ksn-telemetry, activation, certificate, management, portal, brand, network, fallback-dns, country).").Required().StringVar(&rio.category)
	rulesImport.Flag("severity", "info, low, medium, high or critical.").Required().StringVar(&rio.severity)
	rulesImport.Flag("confidence", "official, community or unverified.").Required().StringVar(&rio.confidence)
	rulesImport.Flag("source-url", "Where the feed comes from (http or https URL).").Required().StringVar(&rio.sourceURL)
	rulesImport.Flag("source-title", "Title of the source. Default: \"FORMAT feed FILE\".").StringVar(&rio.title)
	rulesImport.Flag("date", "Version and last_reviewed date of the profile, YYYY-MM-DD. Default: today.").StringVar(&rio.date)
	rulesImport.Flag("exact", "Import names the feed does not mark (zeek-intel, hosts, stix, plain) as exact names, not domain suffixes.").BoolVar(&rio.exact)
	rulesImport.Arg("file", "Feed file; - for standard input.").Default("-").StringVar(&rio.input)

	reportC := app.Command("report", "Print the removal-compliance report from the inventory store.")
	addStorageFlags(reportC, &a.storage, false)
	addReportFlags(reportC, &a.report)

	versionCmd := app.Command("version", "Print the version.")

	for _, c := range []*kingpin.CmdClause{runCmd, inspectCmd, reportC} {
		c.Flag("config.file", "YAML file of flag settings: flag names without dashes as keys, lists for repeatable flags; flags on the command line win.").PlaceHolder("FILE").String()
	}
	argv, err := expandConfig(app, argv)
	if err != nil {
		fmt.Fprintf(stderr, "phonehome: %v\n", err)
		return exitUsage
	}
	cmd, err := app.Parse(argv)
	if exited >= 0 {
		return exited
	}
	if err != nil {
		fmt.Fprintf(stderr, "phonehome: %v (try --help)\n", err)
		return exitUsage
	}
	log := newLogger(stderr, a.logLevel)
	switch cmd {
	case versionCmd.FullCommand():
		fmt.Fprintf(stdout, "phonehome %s\n", buildVersion())
		return exitOK
	case rulesCheck.FullCommand():
		err = rulesCheckCmd(&a, stdout)
	case rulesList.FullCommand():
		err = rulesListCmd(&a, stdout)
	case rulesTest.FullCommand():
		err = rulesTestCmd(&a, stdout)
	case rulesExport.FullCommand():
		err = rulesExportCmd(&rio, stdout)
	case rulesImport.FullCommand():
		err = rulesImportCmd(&rio, stdout, stderr)
	case reportC.FullCommand():
		err = reportCmd(&a, stdout)
	case runCmd.FullCommand():
		err = runSensor(&a, false, stdout, stderr, log)
	case inspectCmd.FullCommand():
		err = runSensor(&a, true, stdout, stderr, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "phonehome: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func loadRules(a *args) (*rules.Set, error) {
	set, err := rules.LoadWith(rules.LoadOptions{Paths: a.ruleFiles, NoBuiltin: a.noBuiltin, DisableProfiles: a.disabledProfiles})
	if err != nil {
		return nil, usageError{err}
	}
	return set, nil
}

func parseHomeNets(in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, usage("--home-net %q: %v", s, err)
			}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func runSensor(a *args, inspect bool, stdout, stderr io.Writer, log *slog.Logger) error {
	if limit := memoryLimit(a); limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	if a.cpuProfile != "" {
		f, err := os.Create(a.cpuProfile)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if a.memProfile != "" {
		defer func() {
			if f, err := os.Create(a.memProfile); err == nil {
				runtime.GC()
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	st, inv, err := sense(a, inspect, stdout, log)
	if st != nil && !inspect {
		printSummary(stderr, a, st, inv)
	}
	if st != nil {
		for _, warn := range st.Warnings {
			fmt.Fprintf(stderr, "phonehome: warning: %s\n", warn)
		}
	}
	return err
}

// geoMaxAge is the age past which a GeoIP database is warned about.
const geoMaxAge = 60 * 24 * time.Hour

// sense runs the pipeline over the capture files and returns what it saw.
func sense(a *args, inspect bool, stdout io.Writer, log *slog.Logger) (*pipeline.Stats, *inventory.Inventory, error) {
	set, err := loadRules(a)
	if err != nil {
		return nil, nil, err
	}
	homeNets, err := parseHomeNets(a.homeNets)
	if err != nil {
		return nil, nil, err
	}
	if a.workers < 1 || a.workers > 1024 {
		return nil, nil, usage("--workers %d: must be between 1 and 1024", a.workers)
	}
	geoDB, err := geo.NewReloader(geo.Config{CountryPath: a.geoCountry, ASNPath: a.geoASN})
	if err != nil {
		return nil, nil, usageError{err}
	}
	// An old database misplaces addresses that changed hands since.
	for _, d := range geoDB.DB().Info() {
		a.geoNote += fmt.Sprintf("; %s built %s", d.Path, d.BuildTime.Format(time.DateOnly))
	}
	// The embedded one is always somewhat old (it is refreshed with
	// releases): said at info level; a file given by the user and left
	// to rot is warned about.
	for _, d := range geoDB.DB().Stale(time.Now(), geoMaxAge) {
		lvl, msg := slog.LevelWarn, "GeoIP database is old; country and ASN look-ups may be wrong"
		if strings.HasPrefix(d.Path, "embedded:") {
			lvl, msg = slog.LevelInfo, "using the embedded country database; give --geoip.country for current data"
		}
		log.Log(context.Background(), lvl, msg, "path", d.Path, "built", d.BuildTime.Format(time.DateOnly),
			"age_days", int(time.Since(d.BuildTime).Hours()/24))
	}
	// Live capture: sockets opened (and privileges dropped) before any file.
	live, err := openLive(a, log)
	if err != nil {
		return nil, nil, err
	}
	defer live.close()
	// Open every file first: a bad file is a usage error before any output.
	var sources []capture.Source
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	for _, name := range a.files {
		f, err := capture.OpenFile(name)
		if err != nil {
			return nil, nil, usageError{err}
		}
		sources = append(sources, f)
	}
	// inspect writes every observation to stdout, synchronously: it is
	// for analysts and tests, and must lose nothing. run hands events to
	// the outputs, whose queues never block the capture.
	var inspectOut *alert.Writer
	var outs *alert.Outputs
	if inspect {
		inspectOut = alert.NewWriter(stdout)
	} else if outs, err = openOutputs(a, stdout, log); err != nil {
		return nil, nil, err
	}
	defer func() {
		if outs != nil { // an error before the run: nothing was sent
			outs.Close(context.Background())
		}
	}()
	observer := alert.Observer{Hostname: a.observerName, Type: "sensor", Product: "phonehome", Version: buildVersion()}
	if observer.Hostname == "" {
		observer.Hostname, _ = os.Hostname()
	}
	deadlines, assets, err := a.storage.policy()
	if err != nil {
		return nil, nil, err
	}
	invCfg := inventory.Config{HomeNets: homeNets, DedupWindow: a.dedupWindow, Deadlines: deadlines, Assets: assets, Observer: observer.Hostname}
	var invStore inventory.Store
	if !inspect {
		// The store is opened before any packet is read: a bad path or
		// an unreachable database is an error before any output.
		if invStore, err = openStore(context.Background(), &a.storage); err != nil {
			return nil, nil, usageError{err}
		}
		invCfg.Persist = invStore != nil
	}
	inv := inventory.New(invCfg)
	var stopStore func() (inventory.FlushStats, error)
	if invStore != nil {
		stopStore = persist(invStore, inv, &a.storage, log)
	}
	// The rule set in force; a reload (SIGHUP, /-/reload: later issues)
	// swaps in a new compiled Set and workers pick it up at their next
	// observation.
	var ruleSet atomic.Pointer[rules.Set]
	ruleSet.Store(set)
	var writeErr error
	cfg := pipeline.Config{
		Workers: a.workers,
		Inspect: inspect,
		// Observations are built only when an output takes them.
		Observations: outs != nil && outs.WantObservations(),
		Flow:         flow.Config{MaxFlows: max(a.flowMax/a.workers, 1)},
		HelloMax:     int(a.helloMax),
		Rules:        ruleSet.Load,
		Geo:          geoDB.DB,
		Inventory:    inv,
		Observer:     observer,
		Log:          log,
		Emit: func(e *alert.Event) {
			if outs != nil {
				outs.Emit(e)
			} else if err := inspectOut.Write(e); err != nil && writeErr == nil {
				writeErr = err
			}
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The HTTP surface (sensor/web.go): metrics, health, hosts, report.
	reloads := newReloader(a, &ruleSet, geoDB, log)
	httpSrv, err := startWeb(ctx, a, &cfg, geoDB, reloads, outs)
	if err != nil {
		if stopStore != nil {
			stopStore()
		}
		return nil, nil, err
	}
	defer httpSrv.stop()
	// SIGHUP reloads the rules and the GeoIP databases; on error the old
	// ones stay in force. A replaced database file is also picked up on
	// its own.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloads.reload() // also POST /-/reload; logs what failed
			}
		}
	}()
	if a.geoCountry != "" || a.geoASN != "" {
		geoDB.OnReload = func(err error) {
			if err != nil {
				log.Error("GeoIP reload failed; the old databases stay in force", "err", err)
			} else {
				log.Info("GeoIP databases reloaded")
			}
		}
		go geoDB.Watch(ctx, 30*time.Second)
	}
	var flush func() error
	if inspectOut != nil {
		flush = inspectOut.Flush
	}
	stats, runErr := live.run(ctx, sources, cfg, flush)
	if stopStore != nil {
		fs, err := stopStore()
		stats.Store = fmt.Sprintf("%s: %d rows in %d writes, %d failed", a.storage.where(), fs.Rows, fs.Flushes, fs.Failures)
		if err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if inspectOut != nil {
		if err := inspectOut.Flush(); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if outs != nil {
		var err error
		stats.Outputs, err = closeOutputs(outs, a.outputDrain, log)
		outs = nil
		if err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if writeErr != nil {
		return stats, inv, fmt.Errorf("writing events: %w", writeErr)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return stats, inv, runErr
	}
	return stats, inv, nil
}

// memoryLimit is the soft limit handed to the Go runtime: what the caps
// allow the tables to hold, plus room for everything else. Without it the
// heap grows to twice what is live before a collection, and a flood of
// short-lived garbage (QUIC key derivations) takes RSS past what the caps
// promise. 0 when $GOMEMLIMIT is set (the runtime read it already).
func memoryLimit(a *args) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	if a.memLimit > 0 {
		return int64(a.memLimit)
	}
	const base, perFlow, perWorker = 64 << 20, 384, 32 << 20 // perWorker: the stream-gathering cap
	return base + perFlow*int64(max(a.flowMax, 1)) + perWorker*int64(max(a.workers, 1))
}
