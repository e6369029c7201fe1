-- Transaction ids are leased in ranges so that many gateways hand out unique ids.
CREATE TABLE id_leases (
    name       text   PRIMARY KEY,
    next_value bigint NOT NULL
);

INSERT INTO id_leases (name, next_value) VALUES ('transaction_id', 1);

-- One transaction id per StartTransaction request: a retransmission gets the same id back.
CREATE TABLE transaction_ids (
    station_id     text   NOT NULL,
    request_key    text   NOT NULL,
    transaction_id bigint NOT NULL UNIQUE,
    PRIMARY KEY (station_id, request_key)
);
