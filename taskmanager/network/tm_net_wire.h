/* The data-plane wire format between taskmanagers (DESIGN.md section 6). Every message is a
 * 20-byte header, all fields big-endian, then `size` bytes of payload:
 *
 *   offset  size  field
 *        0     2  magic 0xF17B (a misdirected or garbage stream fails on its first message)
 *        2     1  type (tm_msg_type)
 *        3     1  flags: bit 0 = the Buffer is an event buffer; other bits 0
 *        4     4  channel id, chosen by the consumer per connection (TM_WIRE_NO_CHANNEL: none)
 *        8     4  sequence number of a Buffer on its channel (0, 1, ...); 0 otherwise
 *       12     4  backlog: buffers still queued at the sender after this Buffer; 0 otherwise
 *       16     4  payload size
 *
 * Payloads (integers big-endian):
 *   PARTITION_REQUEST  consumer -> producer: u32 subpartition, u32 initial credit, u16 id length,
 *                      the partition id (1..TM_WIRE_MAX_ID bytes, not NUL-terminated)
 *   BUFFER             producer -> consumer: the buffer's bytes (1..segment size), sent only
 *                      against a credit
 *   ADD_CREDIT         consumer -> producer: u32 credit (1..TM_WIRE_MAX_CREDIT)
 *   CANCEL_PARTITION   consumer -> producer: empty; the consumer no longer reads the channel
 *   ERROR_RESPONSE     producer -> consumer: u32 error code (tm_wire_error), then a message
 *                      (UTF-8, up to TM_WIRE_MAX_MESSAGE bytes)
 *   CLOSE_REQUEST      consumer -> producer: empty; the consumer closes the connection
 * Anything else (unknown type, bad magic, sizes out of range, a Buffer without credit or out of
 * sequence, a request for a channel id in use) is a protocol error: the receiver logs it and
 * closes that connection, failing the channels on it. */
#ifndef FLINT_TM_NET_WIRE_H
#define FLINT_TM_NET_WIRE_H

#include <stdint.h>
#include <string.h>

#define TM_WIRE_MAGIC 0xF17Bu
#define TM_WIRE_HEADER 20
#define TM_WIRE_FLAG_EVENT 1u
#define TM_WIRE_NO_CHANNEL 0xFFFFFFFFu
#define TM_WIRE_MAX_ID 1024
#define TM_WIRE_MAX_MESSAGE 1024
#define TM_WIRE_MAX_CREDIT (1u << 20)
#define TM_WIRE_MAX_CONTROL (10 + TM_WIRE_MAX_ID)   /* largest non-Buffer payload */

typedef enum tm_msg_type {
    TM_MSG_PARTITION_REQUEST = 1,
    TM_MSG_BUFFER = 2,
    TM_MSG_ADD_CREDIT = 3,
    TM_MSG_CANCEL_PARTITION = 4,
    TM_MSG_ERROR_RESPONSE = 5,
    TM_MSG_CLOSE_REQUEST = 6
} tm_msg_type;

typedef enum tm_wire_error {
    TM_WIRE_ERR_PARTITION_NOT_FOUND = 1,   /* not registered (yet): the consumer retries */
    TM_WIRE_ERR_FATAL = 2                  /* the channel cannot be served: the consumer fails */
} tm_wire_error;

typedef struct tm_wire_hdr {
    uint8_t type, flags;
    uint32_t channel, seq, backlog, size;
} tm_wire_hdr;

static inline void tm_wire_put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void tm_wire_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint16_t tm_wire_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t tm_wire_get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void tm_wire_encode(uint8_t out[TM_WIRE_HEADER], const tm_wire_hdr *h) {
    tm_wire_put16(out, TM_WIRE_MAGIC);
    out[2] = h->type;
    out[3] = h->flags;
    tm_wire_put32(out + 4, h->channel);
    tm_wire_put32(out + 8, h->seq);
    tm_wire_put32(out + 12, h->backlog);
    tm_wire_put32(out + 16, h->size);
}

/* Decode and check the fixed part: 0, or -1 with *why for bad magic, type or flags. Payload
 * sizes are checked by the receiver, which knows its segment size. */
static inline int tm_wire_decode(const uint8_t in[TM_WIRE_HEADER], tm_wire_hdr *h,
                                 const char **why) {
    if (tm_wire_get16(in) != TM_WIRE_MAGIC) {
        *why = "bad magic";
        return -1;
    }
    h->type = in[2];
    h->flags = in[3];
    h->channel = tm_wire_get32(in + 4);
    h->seq = tm_wire_get32(in + 8);
    h->backlog = tm_wire_get32(in + 12);
    h->size = tm_wire_get32(in + 16);
    if (h->type < TM_MSG_PARTITION_REQUEST || h->type > TM_MSG_CLOSE_REQUEST) {
        *why = "unknown message type";
        return -1;
    }
    if (h->flags & ~TM_WIRE_FLAG_EVENT) {
        *why = "unknown flags";
        return -1;
    }
    return 0;
}

#endif
