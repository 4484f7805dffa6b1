// Command cgcount reads a callgrind profile of a server binary over a span
// in which it answered a known number of queries, and prints what a query
// costs: instructions in all, in the code whose function names start with
// -own, and stack growth (runtime.copystack calls a query).
//
//	cgcount -bin regblockd -queries 2000 profile.2
//
// The profiles must be written with --dump-instr=yes --compress-pos=no
// --compress-strings=no, so that each cost line names an instruction
// address and each call its callee. Costs go to the function whose symbol
// holds the address (callgrind's own attribution of Go code is thrown off
// by goroutine stack switches; addresses are not).
package main

import (
	"bufio"
	"debug/elf"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	bin := flag.String("bin", "", "the profiled `binary`")
	queries := flag.Float64("queries", 0, "the `number` of queries the profile spans")
	own := flag.String("own", "github.com/regblock/", "the `prefix` of the function names counted as own code")
	top := flag.Int("top", 15, "list the `n` functions that cost a query most")
	flag.Parse()
	if *queries <= 0 || flag.NArg() != 1 {
		log.Fatal("usage: cgcount -bin BINARY -queries N PROFILE")
	}
	syms, err := symbols(*bin)
	if err != nil {
		log.Fatal(err)
	}
	cost, copies, err := profile(flag.Arg(0), syms)
	if err != nil {
		log.Fatal(err)
	}
	per := map[string]float64{}
	var total, mine float64
	for fn, n := range cost {
		d := float64(n) / *queries
		per[fn] = d
		total += d
		if strings.HasPrefix(fn, *own) {
			mine += d
		}
	}
	fmt.Printf("instructions a query: %.0f\n", total)
	fmt.Printf("in %s*: %.0f (%.2f%%)\n", *own, mine, 100*mine/total)
	fmt.Printf("stack copies a query: %.2f\n", float64(copies) / *queries)
	fns := make([]string, 0, len(per))
	for fn := range per {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return per[fns[i]] > per[fns[j]] })
	for _, fn := range fns[:min(*top, len(fns))] {
		fmt.Printf("%8.0f  %s\n", per[fn], fn)
	}
	for _, fn := range fns {
		if strings.HasPrefix(fn, *own) && per[fn] >= 1 {
			fmt.Printf("%8.0f  %s\n", per[fn], fn)
		}
	}
}

type symbol struct {
	addr, size uint64
	name       string
}

// symbols returns the functions of an ELF binary, sorted by address.
func symbols(path string) ([]symbol, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var syms []symbol
	for _, s := range all {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
			syms = append(syms, symbol{s.Value, s.Size, s.Name})
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	return syms, nil
}

// profile sums a callgrind profile's instructions by function, and counts
// the calls to runtime.copystack.
func profile(path string, syms []symbol) (map[string]uint64, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	funcOf := func(addr uint64) string {
		i := sort.Search(len(syms), func(i int) bool { return syms[i].addr > addr }) - 1
		if i < 0 || addr >= syms[i].addr+syms[i].size {
			return "?"
		}
		return syms[i].name
	}
	cost := map[string]uint64{}
	var copies uint64
	callee, inCall := "", false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "cfn="):
			callee = strings.TrimPrefix(text, "cfn=")
		case strings.HasPrefix(text, "calls="):
			// The next cost line is the call's inclusive cost: already
			// counted where it was spent.
			inCall = true
			if callee == "runtime.copystack" {
				n, err := strconv.ParseUint(strings.Fields(strings.TrimPrefix(text, "calls="))[0], 10, 64)
				if err != nil {
					return nil, 0, fmt.Errorf("%s:%d: %v", path, line, err)
				}
				copies += n
			}
		case strings.HasPrefix(text, "0x"):
			if inCall {
				inCall = false
				continue
			}
			fields := strings.Fields(text) // address, line, instructions
			addr, err := strconv.ParseUint(fields[0][2:], 16, 64)
			if err != nil || len(fields) < 2 {
				return nil, 0, fmt.Errorf("%s:%d: not a cost line: %q", path, line, text)
			}
			n, err := strconv.ParseUint(fields[len(fields)-1], 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("%s:%d: not a cost line: %q", path, line, text)
			}
			cost[funcOf(addr)] += n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	if len(cost) == 0 {
		return nil, 0, fmt.Errorf("%s: no costs: was it written with --dump-instr=yes --compress-pos=no --compress-strings=no?", path)
	}
	return cost, copies, nil
}
