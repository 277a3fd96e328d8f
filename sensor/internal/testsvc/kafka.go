package testsvc

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StartKafka starts a kfake cluster, franz-go's in-process Kafka that
// speaks the real wire protocol over loopback TCP (there is no Debian
// package of Kafka to run instead), with opts (kfake.NumBrokers,
// kfake.SeedTopics, …); its brokers are ListenAddrs(). It fails the test
// when the cluster cannot start, and closes it when the test ends.
func StartKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Consume reads n records from topics, from their start, with a client of
// brokers and opts; it fails the test if they have not all come within
// wait. It then polls for settle more and returns what came then too: a
// duplicate.
func Consume(t testing.TB, brokers []string, n int, topics []string, wait, settle time.Duration, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %d before timeout", len(got), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	short, cancel2 := context.WithTimeout(context.Background(), settle)
	defer cancel2()
	return append(got, cl.PollFetches(short).Records()...)
}
