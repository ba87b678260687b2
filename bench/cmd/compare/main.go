// Command compare reads `go test -bench` results of the netprov benchmark
// module and prints, per benchmark and metric, the median of each
// implementation and the ratio test/base (default ours/netstack), in the
// manner of benchstat.
//
//	go test -run '^$' -bench . -count 5 . > results.txt
//	go run ./cmd/compare results.txt                       # ours vs netstack
//	go run ./cmd/compare -test netstack-self results.txt    # A/A noise check
//	go run ./cmd/compare -test netstack old.txt new.txt     # two runs
//
// With one file, both implementations come from it (the meaningful case:
// same run, interleaved). With two, base comes from the first and test from
// the second. "-" reads standard input.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	base := fs.String("base", "netstack", "implementation in the denominator")
	test := fs.String("test", "ours", "implementation in the numerator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) < 1 || len(files) > 2 {
		return fmt.Errorf("want one or two result files, got %d", len(files))
	}
	baseSamples, err := readFile(files[0], stdin)
	if err != nil {
		return err
	}
	testSamples := baseSamples
	if len(files) == 2 {
		if testSamples, err = readFile(files[1], stdin); err != nil {
			return err
		}
	}
	rows, err := compareSamples(baseSamples, testSamples, *base, *test)
	if err != nil {
		return err
	}
	return printTable(stdout, rows, *base, *test)
}

func readFile(name string, stdin io.Reader) ([]sample, error) {
	if name == "-" {
		return parseResults(stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := parseResults(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}
