// A nats.go client exercising the core features against the server at os.Args[1]
// (logging in with the .creds file os.Args[2] when given).
// Built offline (GOPATH mode) from Debian's golang-github-nats-io-go-nats-dev by
// tests/interop/test_interop_natsgo.py; prints one line per check and "ALL OK".
package main

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	opts := []nats.Option{nats.Timeout(5 * time.Second)}
	if len(os.Args) > 2 { // a .creds file: operator mode
		opts = append(opts, nats.UserCredentials(os.Args[2]))
	}
	nc, err := nats.Connect(os.Args[1], opts...)
	if err != nil {
		fail("connect: %v", err)
	}
	defer nc.Close()

	sub, _ := nc.SubscribeSync("go.>")
	nc.Publish("go.plain", []byte("hello"))
	if m, err := sub.NextMsg(2 * time.Second); err != nil || string(m.Data) != "hello" {
		fail("pubsub: %v", err)
	}
	fmt.Println("ok pubsub")

	msg := nats.NewMsg("go.hdr")
	msg.Header.Set("X-Key", "value")
	msg.Data = []byte("body")
	nc.PublishMsg(msg)
	if m, err := sub.NextMsg(2 * time.Second); err != nil || m.Header.Get("X-Key") != "value" ||
		string(m.Data) != "body" {
		fail("headers: %v", err)
	}
	fmt.Println("ok headers")

	nc.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("re:"), m.Data...)) })
	nc.Flush()
	if r, err := nc.Request("svc.echo", []byte("x"), 2*time.Second); err != nil ||
		!bytes.Equal(r.Data, []byte("re:x")) {
		fail("request: %v", err)
	}
	fmt.Println("ok request")

	if _, err := nc.Request("svc.nobody", nil, 2*time.Second); err != nats.ErrNoResponders {
		fail("no responders: %v", err)
	}
	fmt.Println("ok no_responders")

	var a, b int64
	nc.QueueSubscribe("work", "q", func(m *nats.Msg) { atomic.AddInt64(&a, 1) })
	nc.QueueSubscribe("work", "q", func(m *nats.Msg) { atomic.AddInt64(&b, 1) })
	nc.Flush()
	for i := 0; i < 1000; i++ {
		nc.Publish("work", []byte("job"))
	}
	nc.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for atomic.LoadInt64(&a)+atomic.LoadInt64(&b) < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if a+b != 1000 || a == 0 || b == 0 {
		fail("queue: %d + %d", a, b)
	}
	fmt.Println("ok queue")

	if _, err := nc.RTT(); err != nil {
		fail("rtt: %v", err)
	}
	fmt.Println("ok rtt")
	fmt.Println("ALL OK")
}
