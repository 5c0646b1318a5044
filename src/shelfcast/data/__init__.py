"""Getting data in: readers, date parsing, validation, sources and the simulator."""
