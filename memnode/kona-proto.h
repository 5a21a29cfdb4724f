/*
 * Kona memory-node wire protocol (memnode, rack controller, kona-link).
 *
 * This header is the specification: the server (kona-memnode), the rack
 * controller (kona-rackctl) and the client library (kona-link, compiled
 * into QEMU's kona-cxl device) all include it.  Plain C, no QEMU or GLib.
 *
 * Framing
 * -------
 * A connection is a byte stream (unix or TCP socket) of frames.  Every
 * integer is little endian.  A frame is a 24-byte header followed by
 * `len` payload bytes:
 *
 *   off size field
 *     0    4 len      payload bytes after the header, <= KONA_MAX_PAYLOAD
 *     4    2 op       KonaOp; a reply carries the request's op | KONA_OP_REPLY
 *     6    2 flags    reserved, must be 0
 *     8    8 req_id   chosen by the client, non-zero, echoed in the reply
 *    16    4 status   requests: 0; replies: 0 or a negative Linux errno
 *    20    4 reserved must be 0
 *
 * Requests may be pipelined: a client sends any number of requests
 * without waiting.  A server processes the requests of one connection in
 * order and sends their replies in the same order; every request gets
 * exactly one reply.  Requests from different connections are not ordered
 * against each other (like two CPUs storing to the same memory).
 *
 * A reply whose status is negative carries, as its payload, a short UTF-8
 * message (<= KONA_MAX_ERRMSG bytes, no NUL) saying what went wrong; the
 * connection stays usable.  A *malformed* frame (bad length, unknown op,
 * non-zero reserved fields, payload size not matching the op, offsets out
 * of range, oversize) is not answered: the server closes that connection
 * and only that one.
 *
 * Handshake
 * ---------
 * The first frame on a connection must be HELLO.  The server answers with
 * the negotiated version, the capability bits both sides have, its limits
 * and a 32-byte random nonce.  If the reply's KONA_HELLO_F_AUTH_REQUIRED
 * flag is set (always the case on a non-loopback TCP listener) the next
 * frame must be AUTH: the client proves knowledge of the shared secret
 * with HMAC-SHA256(secret, "kona-auth-client" || server_nonce ||
 * client_nonce) and the server answers with HMAC-SHA256(secret,
 * "kona-auth-server" || server_nonce || client_nonce), so each side knows
 * the other has the secret and no reply can be replayed across sessions.
 * Until then every other op is malformed.  A server at its client limit
 * answers HELLO (or, where AUTH is required, AUTH) with -EMFILE and a
 * message, then closes the connection; a connection that has not
 * finished the handshake by the server's deadline is closed, and one
 * that is still in the handshake may be dropped for a newer one when
 * the server has too many of them.
 *
 * Slabs and access
 * ----------------
 * Memory is handed out in slabs (a multiple of 4 KiB, KONA_MIN_SLAB_SIZE
 * .. KONA_MAX_SLAB_SIZE; the rack controller uses 64 MiB .. 1 GiB).  A
 * slab is zero-filled on first use.  SLAB_ALLOC returns the slab id and a
 * 128-bit random key.  A connection may only touch slabs in its own open
 * set: the ones it allocated, opened with SLAB_OPEN (id + key: a grant,
 * e.g. from the rack controller, or a reconnect) or attached by volume
 * name (and volume key) with SLAB_ATTACH.  Any other slab id is refused
 * with -EACCES (the reply does not say whether the id exists).
 *
 * SLAB_FREE drops the caller's reference and dooms the slab: from then on
 * nobody can open or attach it (its volume name is free for a new
 * volume, its data-directory files are gone), and its memory is
 * destroyed once no connection holds it any more.  Other connections
 * that hold it keep using it until they let go (free, or close).  An
 * unnamed slab that no connection has open any more, and that was not
 * freed, is destroyed after the memnode's linger time (so a client can
 * reconnect and reopen it with its key); a named volume lives until
 * freed.
 *
 * Named volumes
 * -------------
 * A name is not a capability: a volume has a 128-bit *volume key* chosen
 * by its creator (SLAB_ATTACH with KONA_ATTACH_F_CREATE and
 * KONA_ATTACH_F_KEY), stored with it (and in the data directory).
 * Attaching an existing volume needs the same key; a missing key, a
 * wrong key and a name that does not exist all get the same -EACCES
 * reply (without CREATE).  Clients that share a secret derive the key
 * from it: HMAC-SHA256(secret, "kona-volume:" || name), first 16 bytes
 * (kona_auth_volume_key), so a restarted client with the same secret
 * reattaches.  A volume made by a memnode older than volume keys has
 * none: it can be opened by slab id and key only.
 *
 * KONA_ATTACH_F_EXCLUSIVE attaches only if no other connection holds the
 * volume (-EBUSY with a message naming it otherwise), and keeps every
 * other attach out (-EBUSY) while this connection holds it.  A reconnect
 * of the holder, SLAB_OPEN with the slab key on a new connection, takes
 * the hold over at once (the old connection loses the slab), even if the
 * memnode has not noticed yet that the old connection broke.  A second
 * connection of the same holder that only wants to read beside it (the
 * device's background resync) sends KONA_OPEN_F_SHARE after the key: it
 * opens the slab and leaves the hold where it is (servers that offer
 * KONA_CAP_OPEN_SHARE).
 *
 * A server that has volume keys says so with KONA_CAP_VOLKEY; one with
 * SLAB_GEN with KONA_CAP_GENERATION.  (An older server treats the new
 * flags and op as malformed and closes the connection, so clients ask
 * only servers that offer them.)
 *
 * Copy generations
 * ----------------
 * Every slab has a 64-bit generation, 0 when created, that any
 * connection with the slab open can read and raise with SLAB_GEN: a set
 * takes effect only if greater than the current value (so it only grows)
 * and the reply carries the value after.  With a data directory it is
 * stored durably (file and directory synced) before the reply.  A client
 * keeping copies of its data on several memnodes bumps the generation of
 * the copies it still writes while another is unreachable, and on
 * reattach trusts the copy with the highest generation.
 *
 * Operations (request payload -> reply payload)
 * ----------
 *   HELLO        KonaHelloReq                -> KonaHelloRep
 *   AUTH         KonaAuthReq                 -> KonaAuthRep
 *   PING         0..KONA_MAX_PING bytes      -> the same bytes (echo)
 *   STATS        empty                       -> KonaStatsRep + u64[nfields]
 *   SLAB_ALLOC   KonaSlabAllocReq            -> KonaSlabRep
 *   SLAB_FREE    KonaSlabIdReq               -> empty
 *   SLAB_OPEN    KonaSlabOpenReq [+ u32 flags] -> KonaSlabRep
 *   SLAB_ATTACH  KonaSlabAttachReq + [key] + name -> KonaSlabRep
 *   SLAB_GEN     KonaSlabGenReq              -> KonaSlabGenRep
 *   READ         KonaReadReq                 -> exactly `len` bytes
 *   WRITE_LINES  KonaWriteLinesReq + u64 masks[npages] + line data
 *                                            -> empty
 *   FLUSH        empty                       -> empty, sent only once every
 *                earlier write of this connection is in the node's memory
 *                (and, with a data directory, msync'ed to its files: the
 *                socket writes, the ranges reported by WROTE_LINES and
 *                every slab this connection has mapped with SLAB_MAP)
 *   SLAB_MAP     KonaSlabIdReq               -> KonaSlabMapRep + 1 descriptor
 *   WROTE_LINES  KonaWroteLinesReq + nranges x KonaWroteRange + u64 masks
 *                                            -> empty
 *   ZERO         KonaZeroReq                 -> empty (KONA_CAP_ZERO)
 *   RACK_*       rack controller ops, see below.
 *
 * WRITE_LINES carries dirty cache lines only: block_off is a multiple of
 * 4 KiB; masks[i] describes page i of the range (bit j set = the 64-byte
 * line j of that page is present); the data holds the present lines in
 * order (page by page, line by line), popcount(all masks) * 64 bytes.
 * Lines whose bit is clear are left untouched.
 *
 * ZERO makes [offset, offset + len) of a slab read as zeroes, without
 * moving a byte: offset and len are multiples of 4 KiB, 1 <= len, and the
 * range lies inside the slab (anything else is malformed).  An anonymous
 * slab gives the range's memory back (a hole punched in its memfd; a
 * mapping of the slab reads zeroes from then on), a data-directory slab
 * zeroes it in its file, which stays fully allocated; the next FLUSH makes
 * that durable.  It is how a client erases a device (CXL Sanitize) in one
 * request instead of writing the whole slab, which would also commit its
 * memory.  A server zeroes a large range in steps (32 MiB in
 * kona-memnode) and serves its other clients in between; the
 * connection's later requests are answered after the ZERO's reply.
 * STATS counts the requests done (zeroes) and the bytes zeroed so far
 * (bytes_zeroed, step by step); they are not writes.
 *
 * Shared memory (KONA_CAP_SHARED)
 * -------------------------------
 * A client on the same host can map a slab instead of moving its bytes
 * through the socket.  The server offers KONA_CAP_SHARED only on unix
 * socket connections (never TCP) and only when not started with
 * --no-shared.  A slab is a memfd (sealed with F_SEAL_SHRINK |
 * F_SEAL_GROW | F_SEAL_SEAL, so a mapping of it can never SIGBUS) or,
 * with a data directory, its fully allocated file.
 *
 * SLAB_MAP asks for the descriptor of a slab open on this connection (the
 * same rule as READ: -EACCES otherwise).  The success reply carries
 * exactly one descriptor (SCM_RIGHTS) attached to the reply frame's
 * bytes; an error reply carries none.  The client maps `size` bytes at
 * `offset` of it MAP_SHARED read-write, then closes the descriptor.  It is
 * refused with -EOPNOTSUPP where the connection did not negotiate
 * KONA_CAP_SHARED (TCP, --no-shared, or a client that did not ask).  A
 * server queues at most KONA_MAX_QUEUED_FDS descriptors per connection:
 * past that it reads no more requests from it until they are received.
 *
 * The memory of a mapped slab is never handed to anyone else: every slab
 * is new memory (a new memfd or file), so a freed slab lives on in the
 * mappings that hold it, and stays counted in the node's used capacity
 * (STATS slab_bytes) until every connection that mapped it has closed.
 * After a memnode restart, an anonymous slab's mapping is still valid
 * memory but orphaned (the slab is gone); a data-directory slab comes
 * back with the same id and key, and mapping it again gives the same file.
 * Such a file cannot be sealed (most file systems have no seals): a
 * client holding its descriptor could truncate it and make the node fault
 * on the slab, so offer the shared path of a --data-dir memnode to
 * trusted clients only (or run it with --no-shared).
 *
 * WROTE_LINES tells the node which lines a client wrote through its
 * mapping: the node counts them in STATS exactly as if each range had
 * come in its own WRITE_LINES (writes += nranges, lines_written and
 * bytes_written by the lines set in the masks) and marks the ranges for
 * the next FLUSH's sync.  Payload: KonaWroteLinesReq, then `nranges`
 * KonaWroteRange, then the masks of every range in range order (one u64
 * per 4 KiB page, bit j = line j, as WRITE_LINES).  1 <= nranges;
 * every range has 1 <= npages and a page-aligned block_off; the total of
 * npages is <= KONA_MAX_NOTE_PAGES; the payload length is exactly that
 * layout; every range lies inside its slab.  Breaking any of these is a
 * malformed frame.  If a range names a slab not open on this connection
 * the whole request is refused with -EACCES and nothing is counted.
 *
 * Rack controller
 * ---------------
 * The controller speaks the same framing and handshake.  A memnode started
 * with --controller registers itself (RACK_REGISTER: capacity and the
 * address clients should use) and keeps that connection open: it is the
 * node's liveness.  A client asks for N bytes with RACK_ALLOC and gets
 * placements striped across nodes: for each stripe the memnode address,
 * slab id, size and key; it then opens each slab on its memnode with
 * SLAB_OPEN.  The controller keeps capacity accounting and refuses an
 * allocation that does not fit with -ENOSPC and a message.
 *
 *   RACK_REGISTER KonaRackRegisterReq + addr -> KonaRackRegisterRep
 *   RACK_ALLOC    KonaRackAllocReq + [key] + name -> KonaRackAllocRep +
 *                 count x (KonaRackPlacement + addr, padded to 8 bytes) +
 *                 the 16-byte allocation key
 *   RACK_RECLAIM  KonaRackReclaimReq         -> as RACK_ALLOC
 *   RACK_FREE     KonaRackFreeReq [+ key]    -> empty
 *   RACK_STATUS   empty                      -> KonaRackStatusRep +
 *                 nodes x (KonaRackNode + addr, padded to 8 bytes)
 *
 * Every allocation has a 128-bit allocation key, returned at the end of
 * the RACK_ALLOC reply (after the placements, where clients that do not
 * know it stop reading): random for an unnamed allocation, the client's
 * key for a named one.  An allocation is held by the connection that
 * made it (or reclaimed it).  When that connection closes, an unnamed
 * allocation is kept for the controller's lease time (--lease, default
 * 60 s): a client that reconnects gets it back with RACK_RECLAIM
 * { alloc_id, key } (kona-rack does it on reconnect), after which it is
 * the new connection's; without a reclaim the lease expires and its
 * slabs are freed.  RACK_RECLAIM of a held allocation takes it over (the
 * holder reconnecting before the controller saw it go).  A wrong key and
 * an unknown id get the same -EACCES.
 *
 * A named allocation (RACK_ALLOC with a name) needs a key, as a named
 * volume does (KONA_RACK_ALLOC_F_KEY, 16 bytes before the name): the
 * first RACK_ALLOC of a name sets it; a later one of the same name with
 * the same key gets the same placements, with another key (or none) the
 * same -EACCES as a name that does not exist.  Named allocations outlive
 * their connections (no lease) until freed.  KONA_RACK_ALLOC_F_EXCLUSIVE
 * refuses (-EBUSY) while another connection holds the allocation, and
 * keeps others out while held.  RACK_FREE succeeds only for a connection
 * holding the allocation, or with its key (-ENOENT otherwise).  A
 * controller with all this offers KONA_CAP_RECLAIM.
 */
#ifndef KONA_PROTO_H
#define KONA_PROTO_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define KONA_PROTO_MAGIC        0x414e4f4bu     /* "KONA" little endian */
#define KONA_PROTO_VERSION      1

/* ---- sizes and limits: every length field is checked against these ---- */
#define KONA_HDR_SIZE           24
#define KONA_LINE_SIZE          64
#define KONA_PAGE_SIZE          4096
#define KONA_LINES_PER_PAGE     (KONA_PAGE_SIZE / KONA_LINE_SIZE)   /* 64 */
#define KONA_MAX_IO             (1u << 20)      /* READ len, WRITE_LINES data */
#define KONA_MAX_WRITE_PAGES    (KONA_MAX_IO / KONA_PAGE_SIZE)      /* 256 */
#define KONA_MAX_PAYLOAD        (KONA_MAX_IO + 4096u)
#define KONA_MAX_PING           (64u << 10)
#define KONA_MAX_ERRMSG         256
#define KONA_MAX_NAME           64      /* volume names: [A-Za-z0-9._-]+ */
#define KONA_MAX_ADDR           128     /* "unix:/path" or "tcp:host:port" */
#define KONA_MAX_PLACEMENTS     1024
#define KONA_MAX_STATS_FIELDS   64
#define KONA_MIN_SLAB_SIZE      ((uint64_t)KONA_PAGE_SIZE)
#define KONA_MAX_SLAB_SIZE      (1ull << 40)    /* 1 TiB */
#define KONA_NONCE_SIZE         32
#define KONA_MAC_SIZE           32
#define KONA_KEY_SIZE           16
/* WROTE_LINES: pages over all ranges of one request (32 KiB of masks) */
#define KONA_MAX_NOTE_PAGES     (KONA_MAX_WRITE_PAGES * 4)          /* 1024 */
/* descriptors a server queues to one connection (SLAB_MAP replies) */
#define KONA_MAX_QUEUED_FDS     16

/* ---- operations ---- */
typedef enum KonaOp {
    KONA_OP_HELLO         = 0x01,
    KONA_OP_AUTH          = 0x02,
    KONA_OP_PING          = 0x03,
    KONA_OP_STATS         = 0x04,

    KONA_OP_SLAB_ALLOC    = 0x10,
    KONA_OP_SLAB_FREE     = 0x11,
    KONA_OP_SLAB_OPEN     = 0x12,
    KONA_OP_SLAB_ATTACH   = 0x13,
    KONA_OP_SLAB_MAP      = 0x14,
    KONA_OP_SLAB_GEN      = 0x15,

    KONA_OP_READ          = 0x20,
    KONA_OP_WRITE_LINES   = 0x21,
    KONA_OP_FLUSH         = 0x22,
    KONA_OP_WROTE_LINES   = 0x23,
    KONA_OP_ZERO          = 0x24,

    KONA_OP_RACK_REGISTER = 0x30,
    KONA_OP_RACK_ALLOC    = 0x31,
    KONA_OP_RACK_FREE     = 0x32,
    KONA_OP_RACK_STATUS   = 0x33,
    KONA_OP_RACK_RECLAIM  = 0x34,
} KonaOp;

#define KONA_OP_REPLY           0x8000u

/* ---- capability bits (HELLO): the reply carries the intersection ---- */
#define KONA_CAP_WRITE_LINES    (1ull << 0)     /* dirty-line write-back */
#define KONA_CAP_PIPELINE       (1ull << 1)     /* in-order pipelined replies */
#define KONA_CAP_ATTACH         (1ull << 2)     /* SLAB_ATTACH named volumes */
#define KONA_CAP_AUTH           (1ull << 3)     /* HMAC challenge-response */
#define KONA_CAP_PERSIST        (1ull << 4)     /* slabs survive a restart */
#define KONA_CAP_RACK           (1ull << 5)     /* peer is a rack controller */
#define KONA_CAP_ERRMSG         (1ull << 6)     /* error replies carry text */
#define KONA_CAP_SHARED         (1ull << 7)     /* SLAB_MAP hands out slab
                                                 * descriptors (unix only) */
#define KONA_CAP_VOLKEY         (1ull << 8)     /* SLAB_ATTACH takes volume
                                                 * keys and EXCLUSIVE */
#define KONA_CAP_GENERATION     (1ull << 9)     /* SLAB_GEN */
#define KONA_CAP_RECLAIM        (1ull << 10)    /* rack: allocation keys,
                                                 * leases, RACK_RECLAIM */
#define KONA_CAP_OPEN_SHARE     (1ull << 11)    /* SLAB_OPEN takes flags:
                                                 * KONA_OPEN_F_SHARE */
#define KONA_CAP_ZERO           (1ull << 12)    /* ZERO */
#define KONA_CAP_ALL            ((1ull << 13) - 1)

/*
 * Wire images.  Fields are little endian; every struct is naturally
 * aligned with no implicit padding (checked by static asserts in
 * kona-proto.c), so on a little-endian host a struct is its wire image.
 * Code never casts a receive buffer to these: kona-proto.c decodes with
 * bounds checks.
 */
typedef struct KonaHdr {
    uint32_t len;
    uint16_t op;
    uint16_t flags;
    uint64_t req_id;
    int32_t status;
    uint32_t reserved;
} KonaHdr;

typedef struct KonaHelloReq {
    uint32_t magic;             /* KONA_PROTO_MAGIC */
    uint16_t version;           /* highest version the client speaks */
    uint16_t reserved;
    uint64_t caps;              /* KONA_CAP_* the client wants */
    char name[32];              /* client name for logs, NUL padded */
} KonaHelloReq;

#define KONA_HELLO_F_AUTH_REQUIRED  0x1

typedef struct KonaHelloRep {
    uint32_t magic;
    uint16_t version;           /* the version this connection uses */
    uint16_t flags;             /* KONA_HELLO_F_* */
    uint64_t caps;
    uint32_t max_payload;       /* the server's KONA_MAX_PAYLOAD */
    uint32_t max_io;
    uint64_t max_inflight;      /* what the replies the server queues per
                                 * client may cost (bytes + bookkeeping)
                                 * before it stops reading that client */
    uint64_t node_id;           /* random per server instance */
    uint8_t nonce[KONA_NONCE_SIZE];
} KonaHelloRep;

typedef struct KonaAuthReq {
    uint8_t client_nonce[KONA_NONCE_SIZE];
    uint8_t mac[KONA_MAC_SIZE];
} KonaAuthReq;

typedef struct KonaAuthRep {
    uint8_t mac[KONA_MAC_SIZE];
} KonaAuthRep;

typedef struct KonaStatsRep {
    uint32_t nfields;           /* <= KONA_MAX_STATS_FIELDS u64s follow */
    uint32_t reserved;
} KonaStatsRep;

/* Index of each u64 in a STATS reply; new fields are only ever appended. */
typedef enum KonaStatField {
    KONA_STAT_BYTES_READ,
    KONA_STAT_BYTES_WRITTEN,
    KONA_STAT_LINES_WRITTEN,
    KONA_STAT_OPS,
    KONA_STAT_READS,
    KONA_STAT_WRITES,
    KONA_STAT_FLUSHES,
    KONA_STAT_CLIENTS,
    KONA_STAT_CLIENTS_TOTAL,
    KONA_STAT_SLABS,
    KONA_STAT_SLAB_BYTES,
    KONA_STAT_CAPACITY,
    KONA_STAT_BAD_FRAMES,
    KONA_STAT_REFUSED,
    KONA_STAT_UPTIME_MS,
    KONA_STAT_MAPS,             /* slab descriptors handed out (SLAB_MAP) */
    KONA_STAT_MAPPED_SLABS,     /* slabs mapped by a connected client now */
    KONA_STAT_ZEROES,           /* ZERO requests done */
    KONA_STAT_BYTES_ZEROED,     /* and their bytes */
    KONA_STAT__COUNT
} KonaStatField;

typedef struct KonaSlabAllocReq {
    uint64_t size;
    uint64_t flags;             /* reserved, 0 */
} KonaSlabAllocReq;

typedef struct KonaSlabIdReq {
    uint64_t slab_id;
} KonaSlabIdReq;

/* Optionally followed by u32 flags (KONA_CAP_OPEN_SHARE). */
typedef struct KonaSlabOpenReq {
    uint64_t slab_id;
    uint8_t key[KONA_KEY_SIZE];
    uint32_t flags;             /* KONA_OPEN_F_*; 0 when absent */
} KonaSlabOpenReq;

#define KONA_SLAB_OPEN_REQ_SIZE 24      /* without the flags */
#define KONA_OPEN_F_SHARE       0x1     /* leave an exclusive hold alone */
#define KONA_OPEN_F_ALL         0x1

#define KONA_ATTACH_F_CREATE    0x1     /* create the volume if missing */
#define KONA_ATTACH_F_KEY       0x2     /* the volume key follows (needed) */
#define KONA_ATTACH_F_EXCLUSIVE 0x4     /* no other connection may hold it */
#define KONA_ATTACH_F_ALL       0x7

/*
 * Followed by the 16-byte volume key if KONA_ATTACH_F_KEY, then the
 * name.  Without a key the request is refused with -EACCES.
 */
typedef struct KonaSlabAttachReq {
    uint64_t size;              /* 0: attach only; else must match or create */
    uint16_t name_len;          /* 1..KONA_MAX_NAME name bytes follow */
    uint16_t flags;             /* KONA_ATTACH_F_* */
    uint32_t reserved;
} KonaSlabAttachReq;

#define KONA_SLAB_F_CREATED     0x1     /* ATTACH created a new volume */

typedef struct KonaSlabRep {
    uint64_t slab_id;
    uint64_t size;
    uint8_t key[KONA_KEY_SIZE];
    uint32_t flags;             /* KONA_SLAB_F_* */
    uint32_t reserved;
} KonaSlabRep;

typedef struct KonaSlabGenReq {
    uint64_t slab_id;
    uint64_t set;               /* 0: read only; else raise to this */
} KonaSlabGenReq;

typedef struct KonaSlabGenRep {
    uint64_t generation;        /* after the request */
} KonaSlabGenRep;

typedef struct KonaReadReq {
    uint64_t slab_id;
    uint64_t offset;
    uint32_t len;               /* 1..KONA_MAX_IO */
    uint32_t reserved;
} KonaReadReq;

typedef struct KonaZeroReq {
    uint64_t slab_id;
    uint64_t offset;            /* multiple of KONA_PAGE_SIZE */
    uint64_t len;               /* multiple of KONA_PAGE_SIZE, >= 1 page */
} KonaZeroReq;

typedef struct KonaWriteLinesReq {
    uint64_t slab_id;
    uint64_t block_off;         /* multiple of KONA_PAGE_SIZE */
    uint32_t npages;            /* 1..KONA_MAX_WRITE_PAGES */
    uint32_t reserved;
} KonaWriteLinesReq;

typedef struct KonaSlabMapRep {
    uint64_t size;              /* the slab's size: map exactly this much */
    uint64_t offset;            /* of the slab in the descriptor */
    uint32_t flags;             /* reserved, 0 */
    uint32_t reserved;
} KonaSlabMapRep;

typedef struct KonaWroteLinesReq {
    uint32_t nranges;           /* >= 1 KonaWroteRange follow, then masks */
    uint32_t reserved;
} KonaWroteLinesReq;

typedef struct KonaWroteRange {
    uint64_t slab_id;
    uint64_t block_off;         /* multiple of KONA_PAGE_SIZE */
    uint32_t npages;            /* >= 1; sum over ranges <= KONA_MAX_NOTE_PAGES */
    uint32_t reserved;
} KonaWroteRange;

typedef struct KonaRackRegisterReq {
    uint64_t capacity;          /* bytes the node offers */
    uint16_t addr_len;          /* 1..KONA_MAX_ADDR address bytes follow */
    uint16_t reserved0;
    uint32_t reserved1;
} KonaRackRegisterReq;

typedef struct KonaRackRegisterRep {
    uint64_t node_id;
} KonaRackRegisterRep;

#define KONA_RACK_ALLOC_F_KEY       0x1     /* 16-byte key before the name */
#define KONA_RACK_ALLOC_F_EXCLUSIVE 0x2     /* no other connection holds it */
#define KONA_RACK_ALLOC_F_ALL       0x3

typedef struct KonaRackAllocReq {
    uint64_t size;              /* bytes wanted, > 0 */
    uint64_t slab_size;         /* stripe unit; 0 = controller default */
    uint16_t name_len;          /* 0..KONA_MAX_NAME: named allocations */
    uint16_t flags;             /* KONA_RACK_ALLOC_F_* */
    uint32_t reserved;
} KonaRackAllocReq;

typedef struct KonaRackAllocRep {
    uint64_t alloc_id;
    uint64_t size;              /* total, rounded up to pages */
    uint32_t count;             /* <= KONA_MAX_PLACEMENTS placements follow */
    uint32_t reserved;
} KonaRackAllocRep;

typedef struct KonaRackPlacement {
    uint64_t offset;            /* where this slab starts in the allocation */
    uint64_t slab_id;
    uint64_t size;
    uint8_t key[KONA_KEY_SIZE];
    uint16_t addr_len;          /* memnode address, padded to 8 bytes */
    uint16_t reserved0;
    uint32_t reserved1;
} KonaRackPlacement;

/* Optionally followed by the allocation key (for a non-holder). */
typedef struct KonaRackFreeReq {
    uint64_t alloc_id;
} KonaRackFreeReq;

typedef struct KonaRackReclaimReq {
    uint64_t alloc_id;
    uint8_t key[KONA_KEY_SIZE];
} KonaRackReclaimReq;

typedef struct KonaRackStatusRep {
    uint64_t capacity;
    uint64_t used;
    uint32_t nodes;
    uint32_t allocs;
} KonaRackStatusRep;

#define KONA_RACK_NODE_F_ALIVE  0x1

typedef struct KonaRackNode {
    uint64_t node_id;
    uint64_t capacity;
    uint64_t used;
    uint16_t addr_len;
    uint16_t flags;             /* KONA_RACK_NODE_F_* */
    uint32_t reserved;
} KonaRackNode;

/* ---- helpers (kona-proto.c) ---- */

/* Round a variable-length string field up to the 8-byte frame alignment. */
static inline uint32_t kona_pad8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

/* Name of an op for messages ("READ", "?" if unknown); reply bit ignored. */
const char *kona_op_name(unsigned op);

/* Encode a header into its 24-byte wire image. */
void kona_hdr_encode(uint8_t *buf, uint16_t op, uint64_t req_id,
                     int32_t status, uint32_t len);

/* Decode a 24-byte wire image (no validation). */
void kona_hdr_decode(const uint8_t *buf, KonaHdr *h);

/*
 * Validate a request header: known op, reserved fields zero, non-zero
 * req_id, len within the op's bounds.  Returns NULL if fine, otherwise a
 * static string saying why the frame is malformed.
 */
const char *kona_check_request_hdr(const KonaHdr *h);

/* Same for a reply to a request with op @req_op. */
const char *kona_check_reply_hdr(const KonaHdr *h, unsigned req_op);

/*
 * Payload decoders.  Each checks that @len is exactly right for the op
 * (including variable parts) and that every field is in range, fills @out
 * in host byte order and returns NULL, or returns a static reason.
 */
const char *kona_decode_hello_req(const uint8_t *p, uint32_t len,
                                  KonaHelloReq *out);
const char *kona_decode_hello_rep(const uint8_t *p, uint32_t len,
                                  KonaHelloRep *out);
const char *kona_decode_read_req(const uint8_t *p, uint32_t len,
                                 KonaReadReq *out);
/*
 * On success *masks points into @p (unaligned little-endian u64s, use
 * kona_ld64) and *data at the line data.
 */
const char *kona_decode_write_lines_req(const uint8_t *p, uint32_t len,
                                        KonaWriteLinesReq *out,
                                        const uint8_t **masks,
                                        const uint8_t **data);
const char *kona_decode_slab_alloc_req(const uint8_t *p, uint32_t len,
                                       KonaSlabAllocReq *out);
const char *kona_decode_slab_id_req(const uint8_t *p, uint32_t len,
                                    KonaSlabIdReq *out);
const char *kona_decode_slab_open_req(const uint8_t *p, uint32_t len,
                                      KonaSlabOpenReq *out);
/*
 * *name points into @p, not NUL terminated; length in out->name_len.
 * *key points at the volume key (KONA_ATTACH_F_KEY), else NULL.
 */
const char *kona_decode_slab_attach_req(const uint8_t *p, uint32_t len,
                                        KonaSlabAttachReq *out,
                                        const uint8_t **key,
                                        const char **name);
const char *kona_decode_slab_gen_req(const uint8_t *p, uint32_t len,
                                     KonaSlabGenReq *out);
/* Alignment and length; the slab's bounds are the server's to check. */
const char *kona_decode_zero_req(const uint8_t *p, uint32_t len,
                                 KonaZeroReq *out);
const char *kona_decode_slab_rep(const uint8_t *p, uint32_t len,
                                 KonaSlabRep *out);
const char *kona_decode_slab_map_rep(const uint8_t *p, uint32_t len,
                                     KonaSlabMapRep *out);
/*
 * WROTE_LINES: checks the layout (nranges, each range's npages and
 * alignment, the total, the exact length), not the slabs.  Range i is
 * kona_wrote_range(p, i); its masks start at *masks + 8 * (sum of the
 * npages of the ranges before it).
 */
const char *kona_decode_wrote_lines_req(const uint8_t *p, uint32_t len,
                                        KonaWroteLinesReq *out,
                                        const uint8_t **masks);
void kona_wrote_range(const uint8_t *p, uint32_t i, KonaWroteRange *out);
const char *kona_decode_rack_register_req(const uint8_t *p, uint32_t len,
                                          KonaRackRegisterReq *out,
                                          const char **addr);
/* *key: the key (KONA_RACK_ALLOC_F_KEY) or NULL; *name as for ATTACH. */
const char *kona_decode_rack_alloc_req(const uint8_t *p, uint32_t len,
                                       KonaRackAllocReq *out,
                                       const uint8_t **key,
                                       const char **name);
/* *key: the allocation key if the request carries one, else NULL. */
const char *kona_decode_rack_free_req(const uint8_t *p, uint32_t len,
                                      KonaRackFreeReq *out,
                                      const uint8_t **key);
const char *kona_decode_rack_reclaim_req(const uint8_t *p, uint32_t len,
                                         KonaRackReclaimReq *out);

/* Volume names: 1..KONA_MAX_NAME of [A-Za-z0-9._-], not starting with '.'. */
bool kona_name_valid(const char *name, size_t len);

/* Unaligned little-endian loads and stores. */
uint64_t kona_ld64(const uint8_t *p);
uint32_t kona_ld32(const uint8_t *p);
uint16_t kona_ld16(const uint8_t *p);
void kona_st64(uint8_t *p, uint64_t v);
void kona_st32(uint8_t *p, uint32_t v);
void kona_st16(uint8_t *p, uint16_t v);

#endif /* KONA_PROTO_H */
