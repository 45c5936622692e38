-- The five db-benchmark join questions over x, small, medium and big (J1).
SELECT x.*, small.id4 AS small_id4, small.v2 FROM x INNER JOIN small ON x.id1 = small.id1
SELECT x.*, medium.id1 AS medium_id1, medium.id4 AS medium_id4, medium.id5 AS medium_id5, medium.v2 FROM x INNER JOIN medium ON x.id2 = medium.id2
SELECT x.*, medium.id1 AS medium_id1, medium.id4 AS medium_id4, medium.id5 AS medium_id5, medium.v2 FROM x LEFT JOIN medium ON x.id2 = medium.id2
SELECT x.*, medium.id1 AS medium_id1, medium.id2 AS medium_id2, medium.id4 AS medium_id4, medium.v2 FROM x INNER JOIN medium ON x.id5 = medium.id5
SELECT x.*, big.id1 AS big_id1, big.id2 AS big_id2, big.id4 AS big_id4, big.id5 AS big_id5, big.id6 AS big_id6, big.v2 FROM x INNER JOIN big ON x.id3 = big.id3
