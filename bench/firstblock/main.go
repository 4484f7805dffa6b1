// Command firstblock asks a DNS server for a name every millisecond until
// the answer holds an address, and prints when it first did, in
// nanoseconds since the epoch: a reload benchmark's end mark, without the
// cost of starting a client per try.
//
//	firstblock -s 127.0.0.1:1053 -name added1.test -want 192.0.2.80
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("s", "127.0.0.1:53", "server `address`")
	name := flag.String("name", "", "name to ask for (A)")
	want := flag.String("want", "192.0.2.80", "`address` the answer must hold")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg).SetQuestion(dns.Fqdn(*name), dns.TypeA)
	for end := time.Now().Add(*timeout); time.Now().Before(end); time.Sleep(time.Millisecond) {
		r, _, err := c.Exchange(q, *server)
		if err != nil {
			continue
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.String() == *want {
				fmt.Println(time.Now().UnixNano())
				return
			}
		}
	}
	log.Printf("firstblock: %s not answered with %s within %v", *name, *want, *timeout)
	os.Exit(1)
}
