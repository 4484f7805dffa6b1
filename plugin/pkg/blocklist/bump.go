package blocklist

import (
	"errors"
	"regexp"
	"strconv"
	"time"
)

var (
	serialLine = regexp.MustCompile(`(?m)^#!\s*serial:.*$`)
	issuedLine = regexp.MustCompile(`(?m)^#!\s*issued:.*$`)
)

// Bump returns data, a list in regblock's format, with its serial and
// issued header lines rewritten to serial and issued, and every other byte
// as it was: what `regblock sign -bump` does before signing. RPZ zones keep
// their serial in their SOA record and are not bumped.
func Bump(data []byte, serial uint64, issued time.Time) ([]byte, error) {
	if !serialLine.Match(data) || !issuedLine.Match(data) {
		return nil, errors.New("no serial or issued header to bump")
	}
	data = serialLine.ReplaceAllLiteral(data, []byte("#! serial: "+strconv.FormatUint(serial, 10)))
	return issuedLine.ReplaceAllLiteral(data, []byte("#! issued: "+issued.UTC().Format(time.RFC3339))), nil
}
