
Btype.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery7
5SELECT personal_code, given_name FROM persons LIMIT 3