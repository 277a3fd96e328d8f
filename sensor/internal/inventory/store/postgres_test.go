package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The package's tests share one PostgreSQL server, started on first use
// from Debian's binaries (apt-get install postgresql) and stopped by
// TestMain; each test gets a schema of its own. PHONEHOME_TEST_POSTGRES
// names an existing server's database to use instead (the tests create
// schemas in it).
var pgServer struct {
	once    sync.Once
	dsn     string // the test database
	skip    string // why the PostgreSQL tests are skipped
	err     error
	stop    func()
	schemas atomic.Int64
	took    time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer.stop != nil {
		pgServer.stop()
	}
	os.Exit(code)
}

// postgresDSN returns the DSN of an empty schema of the test server,
// starting the server if needed.
func postgresDSN(t testing.TB) string {
	t.Helper()
	pgServer.once.Do(func() {
		start := time.Now()
		pgServer.dsn, pgServer.stop, pgServer.skip, pgServer.err = startPostgres()
		pgServer.took = time.Since(start)
	})
	if pgServer.skip != "" {
		t.Skip(pgServer.skip)
	}
	if pgServer.err != nil {
		t.Fatalf("test PostgreSQL server: %v", pgServer.err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgServer.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("t%d_%d", os.Getpid(), pgServer.schemas.Add(1))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pgServer.dsn)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(pgServer.dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startPostgres runs initdb into a temporary directory and starts a
// server listening on 127.0.0.1 at a free port, its socket in the same
// directory. As root, both run as the user postgres (made by Debian's
// package).
func startPostgres() (dsn string, stop func(), skip string, err error) {
	if dsn := os.Getenv("PHONEHOME_TEST_POSTGRES"); dsn != "" {
		return dsn, nil, "", nil
	}
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(initdbs, func(a, b string) int { return pgMajor(a) - pgMajor(b) })
	if len(initdbs) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			initdbs = []string{p}
		}
	}
	if len(initdbs) == 0 {
		return "", nil, "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): " +
			"install them with `apt-get install postgresql` (make test does) or set PHONEHOME_TEST_POSTGRES to a database DSN", nil
	}
	bin := filepath.Dir(initdbs[len(initdbs)-1])
	dir, err := os.MkdirTemp("", "phonehome-pg-")
	if err != nil {
		return "", nil, "", err
	}
	cleanup := func() { os.RemoveAll(dir) }
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			cleanup()
			return "", nil, "", fmt.Errorf("as root, PostgreSQL must run as an unprivileged user; the user postgres (made by Debian's postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			cleanup()
			return "", nil, "", err
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = attr
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, "", fmt.Errorf("%s: %w\n%s", initdb, err, out)
	}
	port, err := freePort()
	if err != nil {
		cleanup()
		return "", nil, "", err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		cleanup()
		return "", nil, "", err
	}
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=60", "-c", "shared_buffers=32MB")
	srv.SysProcAttr = attr
	srv.Dir = dir
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		logf.Close()
		cleanup()
		return "", nil, "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stop = func() {
		srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		logf.Close()
		cleanup()
	}
	failed := func(err error) (string, func(), string, error) {
		stop()
		log, _ := os.ReadFile(logf.Name())
		return "", nil, "", fmt.Errorf("%w\n%s", err, log)
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conn *pgx.Conn
	for {
		conn, err = pgx.Connect(ctx, admin)
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			return failed(fmt.Errorf("postgres exited: %v", werr))
		case <-ctx.Done():
			return failed(fmt.Errorf("postgres not ready: %w", err))
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE phonehome_test"); err != nil {
		return failed(err)
	}
	return strings.Replace(admin, "/postgres?", "/phonehome_test?", 1), stop, "", nil
}

func pgMajor(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("no TCP address")
	}
	return a.Port, nil
}

func TestPostgres(t *testing.T) {
	runStoreSuite(t, postgresDSN)
	t.Logf("PostgreSQL test server started in %v", pgServer.took.Round(time.Millisecond))
}
