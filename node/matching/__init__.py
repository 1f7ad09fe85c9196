"""Cross-border matching: find the same person in two nodes' records (protocol/SPEC.md sections 10-12).

``features`` turns a person into normalised fields and exact selectors, ``engine`` compares
encoded batches, ``people`` reads the persons that may be matched, ``pairing`` holds the keys of a
pair of nodes, ``rounds`` runs a round as initiator and ``responder`` answers one, ``matches``
and ``disclosures`` follow a match up.
"""
