//! Packing many scoring sequences into one llama.cpp batch as a token trie.
//!
//! Every sequence to score (one per option of every branch of every item) is a token list that starts with the
//! task's shared prefix, already in the KV cache. Sequences of one item share the item's tokens, options of one
//! branch share the branch's tokens, and options may share leading tokens. A trie over the tokens after the prefix
//! evaluates each shared token once: a trie node becomes one batch entry tagged with the sequence ids of every leaf
//! below it, so each sequence sees exactly its own path. This module is pure bookkeeping; the backend decodes.

use std::collections::HashMap;

/// One sequence to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// All tokens, from position 0.
    pub tokens: Vec<i32>,
    /// Position of the first token already in the KV cache's shared prefix is 0; this is how many are (the
    /// sequence's own tokens start here). 0 for a sequence that does not share the prefix.
    pub start: usize,
    /// Index of the first token whose log-probability counts towards the option's score.
    pub score_from: usize,
}

/// One trie node: a token at a position, seen by the sequences listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Token id.
    pub token: i32,
    /// Position in the sequence.
    pub pos: usize,
    /// Leaves (indices into the leaf list) whose path passes through here.
    pub leaves: Vec<usize>,
    /// Whether the logits after this token are needed.
    pub logits: bool,
    /// The node before this one on every path through it (`None` at a root).
    pub parent: Option<usize>,
}

/// Where the log-probability of a scored token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Predictor {
    /// The logits after the last token of the shared prefix.
    Prefix,
    /// The logits after a trie node.
    Node(usize),
}

/// The trie of a group of leaves, with nodes in an order where every parent precedes its children.
#[derive(Debug, Clone, Default)]
pub struct Trie {
    /// Nodes in batch order.
    pub nodes: Vec<Node>,
    /// Per leaf, the (predictor, token) pairs whose log-probabilities sum to its score.
    pub terms: Vec<Vec<(Predictor, i32)>>,
}

impl Trie {
    /// Build the trie for `leaves`. Leaves with `start == 0` get their own root (they do not share the prefix).
    pub fn build(leaves: &[Leaf]) -> Trie {
        let mut nodes: Vec<Node> = Vec::new();
        // (parent node or root marker, token) -> node index. Roots: `None` with the leaf's start position.
        let mut children: HashMap<(Option<usize>, usize, i32), usize> = HashMap::new();
        let mut terms = Vec::with_capacity(leaves.len());
        for (leaf_index, leaf) in leaves.iter().enumerate() {
            let mut parent: Option<usize> = None;
            let mut path = Vec::with_capacity(leaf.tokens.len() - leaf.start);
            for (pos, &token) in leaf.tokens.iter().enumerate().skip(leaf.start) {
                let key = (parent, if parent.is_none() { leaf.start } else { 0 }, token);
                let index = *children.entry(key).or_insert_with(|| {
                    nodes.push(Node {
                        token,
                        pos,
                        leaves: Vec::new(),
                        logits: false,
                        parent,
                    });
                    nodes.len() - 1
                });
                nodes[index].leaves.push(leaf_index);
                path.push(index);
                parent = Some(index);
            }
            let mut leaf_terms = Vec::new();
            for j in leaf.score_from.max(1)..leaf.tokens.len() {
                let predictor = if j > leaf.start {
                    let node = path[j - 1 - leaf.start];
                    nodes[node].logits = true;
                    Predictor::Node(node)
                } else {
                    Predictor::Prefix
                };
                leaf_terms.push((predictor, leaf.tokens[j]));
            }
            terms.push(leaf_terms);
        }
        Trie { nodes, terms }
    }

    /// Decoding plan with one sequence id per token: node `i` belongs to the sequence of its first leaf (a leaf
    /// index). A node whose sequence differs from its parent's starts that sequence: the parent's sequence must be
    /// copied into it up to the node's position first. Along any path the sequence only changes where a later
    /// leaf branches off, so each sequence is one chain of nodes.
    pub fn sequences(&self) -> Vec<usize> {
        self.nodes.iter().map(|node| node.leaves[0]).collect()
    }

    /// Which nodes must be evaluated: those whose logits are needed, and their ancestors. The last token of an
    /// option is read from the logits before it and never needs evaluating itself.
    pub fn nodes_to_decode(&self) -> Vec<bool> {
        let mut keep = vec![false; self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            if self.nodes[i].logits || keep[i] {
                keep[i] = true;
                if let Some(p) = self.nodes[i].parent {
                    keep[p] = true;
                }
            }
        }
        keep
    }

    /// Score of every leaf, given the log-probability of `token` after `predictor`.
    pub fn leaf_scores(&self, mut log_prob: impl FnMut(Predictor, i32) -> f64) -> Vec<f64> {
        self.terms
            .iter()
            .map(|terms| terms.iter().map(|&(p, t)| log_prob(p, t)).sum())
            .collect()
    }

    /// Tokens needed after each predictor, so a backend reads only those from the logits.
    pub fn needed(&self) -> HashMap<Predictor, Vec<i32>> {
        let mut needed: HashMap<Predictor, Vec<i32>> = HashMap::new();
        for terms in &self.terms {
            for &(p, t) in terms {
                let tokens = needed.entry(p).or_default();
                if !tokens.contains(&t) {
                    tokens.push(t);
                }
            }
        }
        needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_tokens_are_evaluated_once() {
        // Prefix of 3 tokens; an item "7 8" then two options: "9" and "10 11".
        let leaves = vec![
            Leaf {
                tokens: vec![1, 2, 3, 7, 8, 9],
                start: 3,
                score_from: 5,
            },
            Leaf {
                tokens: vec![1, 2, 3, 7, 8, 10, 11],
                start: 3,
                score_from: 5,
            },
        ];
        let trie = Trie::build(&leaves);
        let tokens: Vec<i32> = trie.nodes.iter().map(|n| n.token).collect();
        assert_eq!(tokens, [7, 8, 9, 10, 11]);
        assert_eq!(trie.nodes[0].leaves, [0, 1]);
        assert_eq!(trie.nodes[2].leaves, [0]);
        // Option 1 is predicted by node "8"; option 2 by "8" then "10".
        assert_eq!(trie.terms[0], [(Predictor::Node(1), 9)]);
        assert_eq!(
            trie.terms[1],
            [(Predictor::Node(1), 10), (Predictor::Node(3), 11)]
        );
        assert!(
            trie.nodes[1].logits
                && trie.nodes[3].logits
                && !trie.nodes[0].logits
                && !trie.nodes[4].logits
        );
    }

    #[test]
    fn each_branch_gets_its_own_sequence_after_its_parent() {
        // Item "7 8", options "9" and "10 11": the item and option 1 are leaf 0's chain; option 2 starts leaf 1.
        let leaves = vec![
            Leaf {
                tokens: vec![1, 7, 8, 9],
                start: 1,
                score_from: 3,
            },
            Leaf {
                tokens: vec![1, 7, 8, 10, 11],
                start: 1,
                score_from: 3,
            },
        ];
        let trie = Trie::build(&leaves);
        assert_eq!(trie.sequences(), [0, 0, 0, 1, 1]);
        assert_eq!(trie.nodes[3].parent, Some(1));
        // "9" and "11" end their options: nothing reads logits after them.
        assert_eq!(trie.nodes_to_decode(), [true, true, false, true, false]);
    }

    #[test]
    fn positions_follow_the_prefix_and_parents_come_first() {
        let leaves = vec![
            Leaf {
                tokens: vec![1, 2, 5, 6],
                start: 2,
                score_from: 3,
            },
            Leaf {
                tokens: vec![1, 2, 5, 7, 8],
                start: 2,
                score_from: 3,
            },
        ];
        let trie = Trie::build(&leaves);
        let positions: Vec<usize> = trie.nodes.iter().map(|n| n.pos).collect();
        assert_eq!(positions, [2, 3, 3, 4]);
    }

    #[test]
    fn unshared_leaves_get_their_own_root_even_with_equal_tokens() {
        let leaves = vec![
            Leaf {
                tokens: vec![1, 2, 3],
                start: 2,
                score_from: 2,
            },
            Leaf {
                tokens: vec![1, 2, 3],
                start: 0,
                score_from: 2,
            },
        ];
        let trie = Trie::build(&leaves);
        // Leaf 0 adds only token 3 (pos 2); leaf 1 adds 1, 2, 3 from pos 0: no node is shared.
        assert_eq!(trie.nodes.len(), 4);
        assert_eq!(trie.terms[0], [(Predictor::Prefix, 3)]);
        assert_eq!(trie.terms[1], [(Predictor::Node(2), 3)]);
    }

    #[test]
    fn scores_sum_log_probs_along_each_leaf() {
        let leaves = vec![
            Leaf {
                tokens: vec![1, 4, 5],
                start: 1,
                score_from: 1,
            },
            Leaf {
                tokens: vec![1, 6],
                start: 1,
                score_from: 1,
            },
        ];
        let trie = Trie::build(&leaves);
        let scores = trie.leaf_scores(|p, t| match (p, t) {
            (Predictor::Prefix, 4) => -1.0,
            (Predictor::Node(0), 5) => -0.5,
            (Predictor::Prefix, 6) => -3.0,
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!(scores, [-1.5, -3.0]);
        assert_eq!(trie.needed()[&Predictor::Prefix], [4, 6]);
    }
}
