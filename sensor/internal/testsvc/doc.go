// Package testsvc is test support: it starts the real services the tests
// send to (Debian's rsyslogd and prometheus-alertmanager, franz-go's kfake
// Kafka cluster), picks free loopback ports, makes TLS certificates, and
// looks up the programs a test needs, skipping the test where they are not
// installed.
//
// Only _test.go files import it (TestOnlyImportedByTests checks this): it
// imports package testing and kfake, which the sensor does not ship. Every
// function takes the test's testing.TB, fails the test (t.Fatal) when
// something it needs goes wrong, and ends what it started with t.Cleanup.
package testsvc
