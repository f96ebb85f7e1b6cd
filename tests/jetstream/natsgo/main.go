// A nats.go JetStream client (streams, pull and push consumers, ordered
// consumers, key-value and object stores) against the server at os.Args[1].
// Built offline (GOPATH mode) from Debian's golang-github-nats-io-go-nats-dev by
// tests/jetstream/test_jetstream_natsgo.py; prints one line per check and "ALL OK".
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	nc, err := nats.Connect(os.Args[1], nats.Timeout(5*time.Second))
	if err != nil {
		fail("connect: %v", err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(3 * time.Second))
	if err != nil {
		fail("jetstream: %v", err)
	}

	if _, err := js.AddStream(&nats.StreamConfig{Name: "GO", Subjects: []string{"go.>"}}); err != nil {
		fail("add stream: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := js.Publish("go.a", []byte(fmt.Sprintf("m%d", i))); err != nil {
			fail("publish: %v", err)
		}
	}
	ack, err := js.Publish("go.a", []byte("dup"), nats.MsgId("id-1"))
	if err != nil {
		fail("publish msg id: %v", err)
	}
	ack2, err := js.Publish("go.a", []byte("dup"), nats.MsgId("id-1"))
	if err != nil || !ack2.Duplicate || ack2.Sequence != ack.Sequence {
		fail("dedup: %v %+v", err, ack2)
	}
	if _, err := js.Publish("go.a", []byte("x"), nats.ExpectLastSequence(1)); err == nil {
		fail("expected last sequence accepted")
	}
	info, err := js.StreamInfo("GO")
	if err != nil || info.State.Msgs != 6 {
		fail("stream info: %v %+v", err, info)
	}
	fmt.Println("ok stream publish")

	sub, err := js.PullSubscribe("go.a", "puller")
	if err != nil {
		fail("pull subscribe: %v", err)
	}
	msgs, err := sub.Fetch(4, nats.MaxWait(2*time.Second))
	if err != nil || len(msgs) != 4 || string(msgs[0].Data) != "m0" {
		fail("fetch: %v %d", err, len(msgs))
	}
	for _, m := range msgs {
		if err := m.AckSync(); err != nil {
			fail("ack sync: %v", err)
		}
	}
	meta, err := msgs[3].Metadata()
	if err != nil || meta.Sequence.Stream != 4 || meta.NumPending != 2 {
		fail("metadata: %v %+v", err, meta)
	}
	ci, err := js.ConsumerInfo("GO", "puller")
	if err != nil || ci.AckFloor.Stream != 4 {
		fail("consumer info: %v %+v", err, ci)
	}
	fmt.Println("ok pull consumer")

	got := make(chan *nats.Msg, 10)
	psub, err := js.Subscribe("go.a", func(m *nats.Msg) { m.Ack(); got <- m }, nats.Durable("pusher"),
		nats.ManualAck())
	if err != nil {
		fail("push subscribe: %v", err)
	}
	for i := 0; i < 6; i++ {
		select {
		case <-got:
		case <-time.After(3 * time.Second):
			fail("push delivery %d", i)
		}
	}
	psub.Unsubscribe()
	fmt.Println("ok push consumer")

	osub, err := js.SubscribeSync("go.>", nats.OrderedConsumer())
	if err != nil {
		fail("ordered: %v", err)
	}
	for i := 0; i < 6; i++ {
		if _, err := osub.NextMsg(3 * time.Second); err != nil {
			fail("ordered next %d: %v", i, err)
		}
	}
	osub.Unsubscribe()
	fmt.Println("ok ordered consumer")

	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "GOKV", History: 3})
	if err != nil {
		fail("create kv: %v", err)
	}
	r1, err := kv.Put("k", []byte("v1"))
	if err != nil {
		fail("kv put: %v", err)
	}
	if _, err := kv.Update("k", []byte("v2"), r1); err != nil {
		fail("kv update: %v", err)
	}
	if _, err := kv.Update("k", []byte("v3"), r1); err == nil {
		fail("kv stale update accepted")
	}
	e, err := kv.Get("k")
	if err != nil || string(e.Value()) != "v2" {
		fail("kv get: %v", err)
	}
	if _, err := kv.Create("k", []byte("again")); err == nil {
		fail("kv create of an existing key accepted")
	}
	kv.Put("other", []byte("o"))
	keys, err := kv.Keys()
	if err != nil || len(keys) != 2 {
		fail("kv keys: %v %v", err, keys)
	}
	w, err := kv.WatchAll()
	if err != nil {
		fail("kv watch: %v", err)
	}
	initial := 0
	for upd := range w.Updates() {
		if upd == nil {
			break
		}
		initial++
	}
	kv.Delete("other")
	select {
	case upd := <-w.Updates():
		if upd == nil || upd.Operation() != nats.KeyValueDelete || upd.Key() != "other" {
			fail("kv watch delete: %+v", upd)
		}
	case <-time.After(3 * time.Second):
		fail("kv watch: no update")
	}
	w.Stop()
	if initial != 2 {
		fail("kv watch initial values: %d", initial)
	}
	hist, err := kv.History("k")
	if err != nil || len(hist) != 2 {
		fail("kv history: %v %d", err, len(hist))
	}
	if _, err := kv.Get("other"); err != nats.ErrKeyNotFound {
		fail("kv get deleted: %v", err)
	}
	fmt.Println("ok key-value")

	obs, err := js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: "GOOBJ"})
	if err != nil {
		fail("create object store: %v", err)
	}
	blob := bytes.Repeat([]byte("0123456789"), 50000)
	if _, err := obs.PutBytes("blob", blob); err != nil {
		fail("object put: %v", err)
	}
	back, err := obs.GetBytes("blob")
	if err != nil || !bytes.Equal(back, blob) {
		fail("object get: %v", err)
	}
	list, err := obs.List()
	if err != nil || len(list) != 1 || list[0].Name != "blob" {
		fail("object list: %v", err)
	}
	blobInfo, err := obs.GetInfo("blob")
	if err != nil {
		fail("object info: %v", err)
	}
	if _, err := obs.AddLink("alias", blobInfo); err != nil {
		fail("object link: %v", err)
	}
	viaLink, err := obs.GetBytes("alias")
	if err != nil || !bytes.Equal(viaLink, blob) {
		fail("object get through link: %v", err)
	}
	fmt.Println("ok object store")

	if err := js.DeleteStream("GO"); err != nil {
		fail("delete stream: %v", err)
	}
	fmt.Println("ALL OK")
}
