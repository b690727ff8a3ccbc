//! store/failure: which class is a failure a Qdrant server or cluster reports?
//!
//! A gRPC status says less than it seems: Qdrant answers a dead peer or a shard without a live
//! replica with code 13 (Internal, "Service internal error: …") as often as with 14
//! (Unavailable), and the client's own channel reports a refused connection as 13 too. So the
//! code decides first ([`by_code`]), and for the codes Qdrant uses for many things (13 Internal,
//! 2 Unknown) the message decides ([`UNAVAILABLE_MESSAGES`], each entry with the place in Qdrant's
//! or the client's source that makes it). Unavailable means "retry shortly" (HTTP 503): a node,
//! a peer or a shard replica is down or slow, and the store recovers by itself. Whatever matches
//! nothing stays [`Class::Internal`] (HTTP 500): a bug or a broken store, not a wait.
//!
//! Only the class is decided here; the message goes to the log, never to a client
//! (`http/errors.rs`).

/// What a store failure means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Down, unreachable, missing a live replica or slow: retry later.
    Unavailable,
    /// The collection (or what was asked for) is not there.
    NotFound,
    /// Anything else: a fault to look into.
    Internal,
}

/// gRPC status codes (tonic's numbering).
mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// Parts of the messages (compared without case) that mean a node, a peer or a shard replica is
/// unavailable, each with a message that carries it, as the named source writes it. Paths are in
/// qdrant/qdrant unless they name qdrant-client; Qdrant's own `CollectionError::is_transient`
/// calls every one of these transient.
pub const UNAVAILABLE_MESSAGES: &[(&str, &str)] = &[
    // qdrant-client src/channel_pool.rs (this proxy cannot reach its node), and
    // lib/api/src/grpc/transport_channel_pool.rs (that node cannot reach a peer).
    (
        "failed to connect",
        "Failed to connect to http://10.0.0.7:6334/: tonic::transport::Error(Transport, …)",
    ),
    // transport_channel_pool.rs: the peer's channel pool is gone.
    (
        "is not available",
        "Peer http://10.0.0.7:6335/ is not available",
    ),
    // lib/collection/src/shards/replica_set/execute_read_operation.rs: every replica of a shard
    // failed a read with a transient error (the errors follow the count).
    (
        "read operations failed",
        "Service internal error: 1 of 1 read operations failed:\n  Service internal error: …",
    ),
    // execute_read_operation.rs: too few live replicas for the read consistency asked.
    (
        "does not have enough active replicas",
        "Service internal error: The replica set for shard 2 on peer 7 does not have enough \
         active replicas",
    ),
    // replica_set/update.rs: a write finds no live replica of its shard.
    (
        "has no active replica",
        "Service internal error: The replica set for shard 0 on peer 1 has no active replica",
    ),
    // shards/shard_holder/mod.rs (ShardUnavailable, custom sharding).
    (
        "have active replicas",
        "Shard temporarily unavailable: Neither target shard key a nor fallback shard key b \
         have active replicas",
    ),
    // execute_read_operation.rs: the shard is missing on the node asked.
    (
        "local shard",
        "Service internal error: Local shard 3 not found",
    ),
    // lib/collection/src/operations/types.rs: CollectionError::ShardUnavailable.
    (
        "shard temporarily unavailable",
        "Shard temporarily unavailable: partial snapshot recovery is in progress",
    ),
    // shards/channel_service.rs and shards/remote_shard.rs: a peer the cluster cannot address.
    (
        "address for peer",
        "Service internal error: Address for peer ID is not found.",
    ),
    (
        "no address found for peer",
        "Service internal error: no address found for peer 5",
    ),
    // operations/types.rs, From<tonic::transport::Error>; tonic's own transport errors.
    (
        "transport error",
        "Service internal error: Tonic transport error: transport error",
    ),
    // transport_channel_pool.rs, RequestError::Tonic.
    (
        "tonic error",
        "Service internal error: Tonic error: h2 protocol error",
    ),
    // operations/types.rs, From<tonic::Status>: a peer answered Unavailable.
    (
        "status: unavailable",
        "Service internal error: Tonic status error: status: Unavailable, message: \"…\"",
    ),
    // operations/types.rs (CollectionError::Timeout) and storage errors.rs (Timeout).
    (
        "timeout",
        "Timeout error: Deadline Exceeded: status: DeadlineExceeded",
    ),
    (
        "timed out",
        "Timeout: Operation 'search' timed out after 30s",
    ),
    (
        "deadline exceeded",
        "Service internal error: Deadline Exceeded: …",
    ),
    // storage errors.rs: a peer went away mid-request.
    (
        "operation cancelled",
        "Service internal error: Operation cancelled: the peer went away",
    ),
    // The OS and hyper, through tonic.
    (
        "connection refused",
        "error trying to connect: tcp connect error: Connection refused (os error 111)",
    ),
    (
        "connection reset",
        "transport error: connection reset by peer",
    ),
    (
        "broken pipe",
        "error writing a body to connection: Broken pipe (os error 32)",
    ),
    (
        "error trying to connect",
        "error trying to connect: dns error",
    ),
];

/// The class of a gRPC status with this code and message.
pub fn by_code(code: i32, message: &str) -> Class {
    match code {
        // 1: tonic's own request timeout ("Timeout expired"); 4: Qdrant's Timeout; 8: rate
        // limited or a node out of storage; 9: storage locked, or a precondition Qdrant calls
        // transient; 14: Qdrant's ShardUnavailable, tonic's refused connection.
        code::CANCELLED
        | code::DEADLINE_EXCEEDED
        | code::RESOURCE_EXHAUSTED
        | code::FAILED_PRECONDITION
        | code::UNAVAILABLE => Class::Unavailable,
        code::NOT_FOUND => Class::NotFound,
        code::INTERNAL | code::UNKNOWN => by_message(message),
        // 3 InvalidArgument: every request is checked before it is sent (`check_vector`,
        // `check_filter`), so a store that calls one invalid is a fault here, not the client's.
        // 7 / 16: the API key; 12: a cluster call on a standalone node; 15: data loss.
        _ => Class::Internal,
    }
}

/// The class of a 13 Internal or 2 Unknown status, by its message.
pub fn by_message(message: &str) -> Class {
    let lower = message.to_lowercase();
    if UNAVAILABLE_MESSAGES
        .iter()
        .any(|(needle, _)| lower.contains(needle))
    {
        Class::Unavailable
    } else {
        Class::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as Qdrant (1.x, lib/collection and lib/api) and qdrant-client 1.20 write them,
    /// with the code they come with, and the class each must get.
    const CASES: &[(i32, &str, Class)] = &[
        // The observed outage: one node of three stopped, a search on another.
        (
            13,
            "Service internal error: 1 of 1 read operations failed:\n  Service internal error: \
             Tonic status error: status: Unavailable, message: \"Failed to connect to \
             http://10.0.0.7:6455/, error: transport error\"",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: The replica set for shard 2 on peer 381894127 does not have \
             enough active replicas",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: The replica set for shard 0 on peer 1 has no active replica",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: Local shard 3 not found",
            Class::Unavailable,
        ),
        (
            14,
            "Shard temporarily unavailable: partial snapshot recovery is in progress",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: Address for peer ID is not found.",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: Tonic transport error: transport error",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: Tonic error: status: Unavailable, message: \"Peer \
             http://10.0.0.7:6335/ is not available\"",
            Class::Unavailable,
        ),
        (
            4,
            "Timeout: Operation 'search' timed out after 30s",
            Class::Unavailable,
        ),
        (
            13,
            "Service internal error: 2 out of 3 shards failed to apply operation. First error \
             captured: Timeout error: Deadline Exceeded: status: DeadlineExceeded",
            Class::Unavailable,
        ),
        // qdrant-client's channel: the node this proxy talks to is down.
        (
            13,
            "Failed to connect to http://127.0.0.1:6334/: tonic::transport::Error(Transport, \
             ConnectError(\"tcp connect error\", Os { code: 111, kind: ConnectionRefused }))",
            Class::Unavailable,
        ),
        (1, "Timeout expired", Class::Unavailable),
        (
            2,
            "transport error: connection reset by peer",
            Class::Unavailable,
        ),
        (9, "Storage locked: writes are disabled", Class::Unavailable),
        (
            8,
            "Rate limiting exceeded: Read rate limit exceeded",
            Class::Unavailable,
        ),
        (
            5,
            "Not found: Collection `images` doesn't exist!",
            Class::NotFound,
        ),
        // Faults, not waits.
        (
            13,
            "Service internal error: json (de)serialization error: EOF while parsing",
            Class::Internal,
        ),
        (
            13,
            "Service internal error: Mutex lock poisoned: poisoned lock",
            Class::Internal,
        ),
        (
            3,
            "Wrong input: Vector dimension error: expected dim: 512, got 16",
            Class::Internal,
        ),
        (16, "Invalid api-key", Class::Internal),
        (7, "Forbidden: global access is required", Class::Internal),
        (12, "Qdrant is running in standalone mode", Class::Internal),
        (
            15,
            "Checksum mismatch: expected a, actual b",
            Class::Internal,
        ),
        (2, "something new", Class::Internal),
    ];

    #[test]
    fn every_known_message_gets_its_class() {
        for (code, message, class) in CASES {
            assert_eq!(by_code(*code, message), *class, "{code} {message:?}");
        }
    }

    /// Every entry of the table is lower case (the match is) and is found in its example.
    #[test]
    fn every_table_entry_matches_its_example() {
        for (needle, example) in UNAVAILABLE_MESSAGES {
            assert_eq!(*needle, needle.to_lowercase(), "{example}");
            assert!(
                example.to_lowercase().contains(needle),
                "{needle}: {example}"
            );
            assert_eq!(by_code(13, example), Class::Unavailable, "{example}");
            assert_eq!(by_code(2, example), Class::Unavailable, "{example}");
        }
    }
}
