/* Unit tests: us_instant_us, SQLite's reading of a metadata date-time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"

#include <string.h>

#include "us_sqlite_instant.h"

/* What PostgreSQL's us_instant_us (us_pg_filter.h) answers for each, read
 * from a PostgreSQL 15 server. */
static const struct {
    const char *s;
    long long us;
} READ[] = {
        { "2024-05-01", 1714521600000000LL },
        { "2024-05-01 ", 1714521600000000LL },
        { "2024-05-01\n", 1714521600000000LL },
        { "2024-05-01T10:00", 1714557600000000LL },
        { "2024-05-01 10:00", 1714557600000000LL },
        { "2024-05-01T10:00:00", 1714557600000000LL },
        { "2024-05-01 T 10:00", 1714557600000000LL },
        { "2024-05-01\t10:00:00", 1714557600000000LL },
        { "2024-05-01T10:00:00Z", 1714557600000000LL },
        { "2024-05-01T10:00:00z", 1714557600000000LL },
        { "2024-05-01t10:00:00z", 1714557600000000LL },
        { "2024-05-01 t 10:00", 1714557600000000LL },
        { "2024-05-01T10:00:00 Z ", 1714557600000000LL },
        { "2024-05-01T10:00:00.1Z", 1714557600100000LL },
        { "2024-05-01T10:00:00.12Z", 1714557600120000LL },
        { "2024-05-01T10:00:00.123Z", 1714557600123000LL },
        { "2024-05-01T10:00:00.1234Z", 1714557600123400LL },
        { "2024-05-01T10:00:00.12345Z", 1714557600123450LL },
        { "2024-05-01T10:00:00.123456Z", 1714557600123456LL },
        { "2024-05-01T10:00:00.1234567Z", 1714557600123457LL },
        { "2024-05-01T10:00:00.12345678Z", 1714557600123457LL },
        { "2024-05-01T10:00:00.123456789Z", 1714557600123457LL },
        { "2024-05-01T10:00:00.0000005Z", 1714557600000000LL },
        { "2024-05-01T10:00:00.0000015Z", 1714557600000002LL },
        { "2024-05-01T10:00:00.0000025Z", 1714557600000002LL },
        { "2024-05-01T10:00:00.0000035Z", 1714557600000004LL },
        { "2024-05-01T10:00:00.00000050000000000001Z", 1714557600000001LL },
        { "2024-05-01T10:00:00.9999995Z", 1714557601000000LL },
        { "2024-12-31T23:59:59.9999999Z", 1735689600000000LL },
        { "2024-05-01T10:00:00.000000000000000000000000000000000000000000000000000000000000000000000000999999Z", 1714557600000000LL },
        { "2024-05-01T10:00:00+02:00", 1714550400000000LL },
        { "2024-05-01T10:00:00-02:30", 1714566600000000LL },
        { "2024-05-01T10:00:00 +02:00", 1714550400000000LL },
        { "2024-05-01T10:00:00+14:00", 1714507200000000LL },
        { "2024-05-01T10:00:00-14:59", 1714611540000000LL },
        { "2024-05-01T10:00:00-00:00", 1714557600000000LL },
        { "2024-05-01T10:00Z", 1714557600000000LL },
        { "2024-05-01T10:00+02:00", 1714550400000000LL },
        { "2024-05-01T10:00:00.5+02:00", 1714550400500000LL },
        { "2024-05-01 12:00:00.000003+02:00", 1714557600000003LL },
        { "2024-05-01T10:00:60", 1714557660000000LL },
        { "2024-05-01T23:59:60", 1714608000000000LL },
        { "2024-05-01T10:00:00+15:00", 1714503600000000LL },
        { "2024-05-01T10:00:00+1559", 1714500060000000LL },
        { "2024-05-01T10:00:00+0200", 1714550400000000LL },
        { "2024-05-01T10:00:00-0230", 1714566600000000LL },
        { "2024-05-01T10:00:00+02", 1714550400000000LL },
        { "2024-05-01T10:00+02 ", 1714550400000000LL },
        { "2024-02-29", 1709164800000000LL },
        { "2000-02-29", 951782400000000LL },
        { "2024-02-29T23:59:59.999999Z", 1709251199999999LL },
        { "2024-03-01T01:00:00+02:00", 1709247600000000LL },
        { "2024-05-01T24:00", 1714608000000000LL },
        { "2024-05-01T24:00:00", 1714608000000000LL },
        { "2024-05-01T24:00:00.0000001", 1714608000000000LL },
        { "2024-05-01T24:00:00+02:00", 1714600800000000LL },
        { "1969-12-31T23:59:59.999999Z", -1LL },
        { "1970-01-01", 0LL },
        { "0001-01-01", -62135596800000000LL },
        { "9999-12-31T23:59:59.999999Z", 253402300799999999LL },
        { "9999-12-31T23:59:59.9999999", 253402300800000000LL },
};

/* Forms PostgreSQL refuses, or reads otherwise (a second T, no separator
 * before the time, 10:00.5 as minutes and seconds), or that neither
 * SQLite's julianday() (the filters before) nor this reads. */
static const char *const REFUSED[] = {
        "2023-02-29",
        "1900-02-29",
        "2024-02-30",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-05-00",
        "0000-01-01",
        "2024-05-01T",
        "2024-05-01 T",
        "2024-05-01TT10:00",
        "2024-05-01T T10:00",
        "2024-05-0110:00",
        "2024-05-01T24:30",
        "2024-05-01T24:00:01",
        "2024-05-01T24:00:00.5",
        "2024-05-01T25:00",
        "2024-05-01T10:60",
        "2024-05-01T1:00:00",
        "2024-05-01T10",
        "2024-05-01T10:00:0",
        "2024-05-01T10:00:00.",
        "2024-05-01T10:00:00.Z",
        "2024-05-01T10:00:00,5",
        "2024-05-01T10:00.5",
        "2024-05-01T23:59:60.5",
        "2024-05-01T10:00:00+16:00",
        "2024-05-01T10:00:00+1600",
        "2024-05-01T10:00:00+02:60",
        "2024-05-01T10:00:00+023",
        "2024-05-01T10:00:00+02:5",
        "2024-05-01T10:00:00+02:00:00",
        "2024-05-01T10:00:00+2:00",
        "2024-05-01T10:00:00 UTC",
        "2024-05-01T10:00:00+02:00x",
        "2024-05-01T10:00:00ZZ",
        "2024-05-01Z",
        "2024-05-01x",
        "20240501",
        "2024-5-1",
        "+2024-05-01",
        "-2024-05-01",
        " 2024-05-01",
        "",
        "now",
        "2451545.0",
        "10:00:00",
};

static void test_forms_as_postgresql_reads_them(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(READ) / sizeof(READ[0]); i++) {
        long long v = 0;
        if (!us_sqlite_instant_parse(READ[i].s, strlen(READ[i].s), &v))
            fail_msg("refused: \"%s\"", READ[i].s);
        if (v != READ[i].us)
            fail_msg("\"%s\": %lld, PostgreSQL %lld", READ[i].s, v, READ[i].us);
    }
}

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(REFUSED) / sizeof(REFUSED[0]); i++) {
        long long v = 0;
        if (us_sqlite_instant_parse(REFUSED[i], strlen(REFUSED[i]), &v))
            fail_msg("read: \"%s\" as %lld", REFUSED[i], v);
    }
}

/* The length decides, not a NUL: a NUL is no space. */
static void test_length(void **state)
{
    long long v = 0;
    (void)state;
    assert_true(us_sqlite_instant_parse("2024-05-01T10:00:00Zjunk", 20, &v));
    assert_true(v == 1714557600000000LL);
    assert_false(us_sqlite_instant_parse("2024-05-01\0", 11, &v));
    assert_false(us_sqlite_instant_parse("2024-05-01T10:00:00\0Z", 21, &v));
    assert_false(us_sqlite_instant_parse("2024-05", 7, &v));
    assert_false(us_sqlite_instant_parse("2024-05-01T10:0", 15, &v));
}

/* Every day of every month of a leap and a common year, and their day
 * after: day numbers in a row, one day apart. */
static void test_days_of_the_months(void **state)
{
    static const int DAYS[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    (void)state;
    for (int y = 2023; y <= 2024; y++) {
        long long prev = 0;
        int first = 1;
        for (int m = 1; m <= 12; m++) {
            int last = DAYS[m - 1] + (m == 2 && y == 2024);
            for (int d = 1; d <= 32; d++) {
                char buf[16];
                long long v = 0;
                snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
                int ok = us_sqlite_instant_parse(buf, strlen(buf), &v);
                if (ok != (d <= last))
                    fail_msg("%s: %s", buf, ok ? "read" : "refused");
                if (!ok)
                    continue;
                if (!first && v - prev != 86400000000LL)
                    fail_msg("%s: %lld after %lld", buf, v, prev);
                prev = v;
                first = 0;
            }
        }
    }
}

/* 1 to 9 fractional digits, each a microsecond apart where six digits
 * tell them apart. */
static void test_fraction_digits(void **state)
{
    static const char *const DIGITS = "123456789";
    static const long long WANT[] = { 100000, 120000, 123000, 123400, 123450, 123456, 123457, 123457, 123457 };
    (void)state;
    for (int k = 1; k <= 9; k++) {
        char buf[48];
        long long v = 0;
        snprintf(buf, sizeof(buf), "1970-01-01T00:00:00.%.*sZ", k, DIGITS);
        assert_true(us_sqlite_instant_parse(buf, strlen(buf), &v));
        if (v != WANT[k - 1])
            fail_msg("%s: %lld, want %lld", buf, v, WANT[k - 1]);
    }
}

/* Registered on a connection: an integer for a date-time, NULL for other
 * text and for every other type. */
static void test_sql_function(void **state)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    (void)state;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(us_sqlite_instant_register(db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT us_instant_us('2024-05-01T10:00:00.000001Z'),"
                                        " us_instant_us('2024-05-01T10:00:00.000002Z'),"
                                        " us_instant_us('2024-02-30'), us_instant_us(1714557600),"
                                        " us_instant_us(NULL), us_instant_us(x'323032342d30352d3031')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_true(sqlite3_column_int64(st, 0) == 1714557600000001LL);
    assert_true(sqlite3_column_int64(st, 1) == 1714557600000002LL);
    for (int i = 2; i < 6; i++)
        assert_int_equal(sqlite3_column_type(st, i), SQLITE_NULL);
    assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_as_postgresql_reads_them),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_days_of_the_months),
        cmocka_unit_test(test_fraction_digits),
        cmocka_unit_test(test_sql_function),
    };
    return fixture_run("us_sqlite_instant", tests, NULL, NULL);
}
