package node

import badger "github.com/ipfs/go-ds-badger"

// DatastoreOptions are the badger options of a node's datastore, sized for
// a governance store: ops (≤ 64 KiB each, a few thousand per upgrade),
// rules records, signing records and package blocks (256 KiB blocks, which
// go to the value log).
//
// go-ds-badger's defaults keep a 16 MiB memtable, and badger allocates a
// memtable's whole arena up front (≈ 1.3 × MaxTableSize: ~20 MiB of heap
// per node before the first write). 2 MiB tables allocate ~2.6 MiB and
// still take any single op (values up to 65,500 bytes stay in the LSM
// tree; a write batch may hold 15 % of a table, ~300 KiB). Two memtables
// (one being flushed) bound the worst case; value-log files of 64 MiB
// instead of 1 GiB keep the files of a small store small. Measured in
// docs/benchmarks.md (memory per node).
func DatastoreOptions() badger.Options {
	o := badger.DefaultOptions
	o.MaxTableSize = 2 << 20
	o.NumMemtables = 2
	o.ValueLogFileSize = 64 << 20
	return o
}
