//! Tests of clip-train.
