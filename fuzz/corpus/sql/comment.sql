SELECT 1 -- trailing
/* block /* nested */ */