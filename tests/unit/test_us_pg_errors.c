/* Unit tests: PostgreSQL error messages are read by their SQLSTATE, in any
 * language the server writes them (the texts are PostgreSQL 15's, English
 * and German, as libpq's verbose mode puts them together). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fixture.h"
#include <string.h>

#include "us_pg_errors.h"

static const char DEADLOCK_EN[] =
    "ERROR:  40P01: deadlock detected\n"
    "DETAIL:  Process 4242 waits for ShareLock on transaction 771; blocked by process 4243.\n"
    "HINT:  See server log for query details.\n"
    "LOCATION:  DeadLockReport, deadlock.c:1151\n";
static const char DEADLOCK_DE[] =
    "FEHLER:  40P01: Verklemmung (Deadlock) entdeckt\n"
    "DETAIL:  Prozess 4242 wartet auf ShareLock-Sperre auf Transaktion 771; blockiert von Prozess 4243.\n"
    "TIPP:  Einzelheiten zur Anfrage finden Sie im Serverlog.\n"
    "LOCATION:  DeadLockReport, deadlock.c:1151\n";
static const char LOCK_TIMEOUT_DE[] =
    "FEHLER:  55P03: storniere Anfrage wegen Zeitüberschreitung einer Sperre\n"
    "LOCATION:  ProcessInterrupts, postgres.c:3304\n";
static const char STATEMENT_TIMEOUT_DE[] =
    "FEHLER:  57014: storniere Anfrage wegen Zeitüberschreitung der Anfrage\n"
    "LOCATION:  ProcessInterrupts, postgres.c:3319\n";
static const char UNIQUE_DE[] =
    "FEHLER:  23505: doppelter Schlüsselwert verletzt Unique-Constraint »t_pkey«\n"
    "DETAIL:  Schlüssel »(id)=(1)« existiert bereits.\n"
    "SCHEMA NAME:  public\n"
    "TABLE NAME:  t\n"
    "CONSTRAINT NAME:  t_pkey\n"
    "LOCATION:  _bt_check_unique, nbtinsert.c:664\n";
static const char LOST_STATEMENT_DE[] =
    "FEHLER:  26000: vorbereitete Anweisung »us_session_get« existiert nicht\n"
    "LOCATION:  FetchPreparedStatement, prepare.c:451\n";
/* the server ended the backend, then libpq found the socket closed */
static const char TERMINATED_DE[] =
    "FATAL:  57P01: Verbindung wird abgebrochen aufgrund von Anweisung des Administrators\n"
    "LOCATION:  ProcessInterrupts, postgres.c:3211\n"
    "server closed the connection unexpectedly\n"
    "\tThis probably means the server terminated abnormally\n"
    "\tbefore or while processing the request.\n";
static const char IDLE_TIMEOUT_DE[] =
    "FATAL:  25P03: Verbindung wird abgebrochen wegen Zeitüberschreitung im inaktiven Transaktionsblock\n";
static const char CONNECTION_FAILURE[] = "FATAL:  08006: connection failure\n";
static const char NO_CONNECTION[] = "no connection to the server\n";

static void test_sqlstate_is_read_from_the_first_error_line(void **state)
{
    char code[6];
    (void)state;
    assert_int_equal(us_pg_sqlstate(DEADLOCK_DE, code), 1);
    assert_string_equal(code, "40P01");
    assert_int_equal(us_pg_sqlstate(UNIQUE_DE, code), 1);
    assert_string_equal(code, "23505");
    assert_int_equal(us_pg_sqlstate(TERMINATED_DE, code), 1);
    assert_string_equal(code, "57P01");
    /* the default verbosity has no code: nothing is guessed from the text */
    assert_int_equal(us_pg_sqlstate("ERROR:  deadlock detected\n", code), 0);
    assert_string_equal(code, "");
    assert_int_equal(us_pg_sqlstate("ERROR:  ABCD: short\n", code), 0);
    assert_int_equal(us_pg_sqlstate("ERROR:  ABCDEF: long\n", code), 0);
    assert_int_equal(us_pg_sqlstate("", code), 0);
    assert_int_equal(us_pg_sqlstate(NULL, code), 0);
    assert_int_equal(us_pg_sqlstate("ERROR:  4", code), 0);
}

static void test_retries_are_told_by_code_in_any_language(void **state)
{
    (void)state;
    assert_int_equal(us_pg_error_kind(DEADLOCK_EN), US_PG_ERR_DEADLOCK);
    assert_int_equal(us_pg_error_kind(DEADLOCK_DE), US_PG_ERR_DEADLOCK);
    assert_int_equal(us_pg_error_kind("FEHLER:  40001: konnte Zugriff nicht serialisieren\n"),
                     US_PG_ERR_DEADLOCK);
    assert_int_equal(us_pg_error_kind(LOCK_TIMEOUT_DE), US_PG_ERR_LOCK_TIMEOUT);
    assert_int_equal(us_pg_error_kind(STATEMENT_TIMEOUT_DE), US_PG_ERR_BUSY);
    assert_int_equal(us_pg_error_kind("FATAL:  53300: zu viele Verbindungen\n"), US_PG_ERR_BUSY);
    assert_int_equal(us_pg_error_kind("FATAL:  57P03: das Datenbanksystem fährt herunter\n"),
                     US_PG_ERR_BUSY);
}

static void test_lost_connections_are_told_by_code_or_by_libpq(void **state)
{
    (void)state;
    assert_int_equal(us_pg_error_kind(TERMINATED_DE), US_PG_ERR_BROKEN);
    assert_int_equal(us_pg_error_kind(IDLE_TIMEOUT_DE), US_PG_ERR_BROKEN);
    assert_int_equal(us_pg_error_kind(LOST_STATEMENT_DE), US_PG_ERR_BROKEN);
    assert_int_equal(us_pg_error_kind(CONNECTION_FAILURE), US_PG_ERR_BROKEN);
    assert_int_equal(us_pg_error_kind(NO_CONNECTION), US_PG_ERR_BROKEN);
    assert_int_equal(us_pg_error_kind("could not receive data from server: Connection reset by peer\n"),
                     US_PG_ERR_BROKEN);
    /* the first line's code is the error's: a later line is not read (the
     * connection's loss is also told by libpq's status, in the store) */
    assert_int_equal(us_pg_error_kind("FEHLER:  40P01: Verklemmung (Deadlock) entdeckt\n"
                                      "FATAL:  57P02: Verbindung wird abgebrochen\n"),
                     US_PG_ERR_DEADLOCK);
    /* a protocol violation is a statement's error too */
    assert_int_equal(us_pg_error_kind("ERROR:  08P01: bind message supplies 1 parameters, but "
                                      "prepared statement \"x\" requires 2\n"),
                     US_PG_ERR_OTHER);
}

/* Data quoted in a message's later lines (a key's value, which a client
 * chooses) cannot make it a lost connection or a retry. */
static void test_quoted_data_is_not_read_as_a_code(void **state)
{
    (void)state;
    assert_int_equal(us_pg_error_kind("ERROR:  23505: duplicate key value violates unique constraint\n"
                                      "DETAIL:  Key (name)=(x\nX:  57P01: y) already exists.\n"),
                     US_PG_ERR_OTHER);
    assert_int_equal(us_pg_error_kind("ERROR:  22P02: invalid input syntax for type uuid: "
                                      "\"connection to server\"\n"),
                     US_PG_ERR_OTHER);
    assert_int_equal(us_pg_error_kind("ERROR:  23505: duplicate key\n"
                                      "DETAIL:  Key (name)=(server closed the connection) already exists.\n"),
                     US_PG_ERR_OTHER);
}

/* Class 53 (insufficient resources) passes: later. */
static void test_resources_are_busy(void **state)
{
    (void)state;
    assert_int_equal(us_pg_error_kind("ERROR:  53200: out of shared memory\n"), US_PG_ERR_BUSY);
    assert_int_equal(us_pg_error_kind("ERROR:  53100: could not extend file\n"), US_PG_ERR_BUSY);
    assert_int_equal(us_pg_error_kind("FATAL:  53300: sorry, too many clients already\n"),
                     US_PG_ERR_BUSY);
}

static void test_plain_errors_are_not_retried(void **state)
{
    (void)state;
    assert_int_equal(us_pg_error_kind(UNIQUE_DE), US_PG_ERR_OTHER);
    assert_int_equal(us_pg_error_kind("ERROR:  42P01: relation \"us_sessions\" does not exist\n"),
                     US_PG_ERR_OTHER);
    assert_int_equal(us_pg_error_kind(NULL), US_PG_ERR_OTHER);
    assert_int_equal(us_pg_error_kind(""), US_PG_ERR_OTHER);
    /* without codes (another verbosity) nothing is retried on its words */
    assert_int_equal(us_pg_error_kind("ERROR:  deadlock detected\n"), US_PG_ERR_OTHER);
    /* a DETAIL line quoting user data is not a code line */
    assert_int_equal(us_pg_error_kind("ERROR:  23505: duplicate key\n"
                                      "DETAIL:  Key (name)=(40P01: x) already exists.\n"),
                     US_PG_ERR_OTHER);
}

/* one line, without the lines that say where (source line, object names) */
static void test_text_is_one_line_without_location(void **state)
{
    char out[512];
    (void)state;
    us_pg_error_text(TERMINATED_DE, out, sizeof(out));
    assert_string_equal(out, "FATAL:  57P01: Verbindung wird abgebrochen aufgrund von Anweisung "
                             "des Administrators server closed the connection unexpectedly  This "
                             "probably means the server terminated abnormally  before or while "
                             "processing the request.");
    us_pg_error_text(UNIQUE_DE, out, sizeof(out));
    assert_string_equal(out, "FEHLER:  23505: doppelter Schl\xc3\xbcsselwert verletzt "
                             "Unique-Constraint \xc2\xbbt_pkey\xc2\xab DETAIL:  "
                             "Schl\xc3\xbcssel \xc2\xbb(id)=(1)\xc2\xab existiert bereits.");
    us_pg_error_text("", out, sizeof(out));
    assert_string_equal(out, "");
    us_pg_error_text(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    /* cut at the buffer's end, always terminated */
    char small[8];
    us_pg_error_text(DEADLOCK_EN, small, sizeof(small));
    assert_string_equal(small, "ERROR:"); /* and its trailing space dropped */
    char one[1];
    us_pg_error_text(DEADLOCK_EN, one, sizeof(one));
    assert_string_equal(one, "");
    /* never inside a UTF-8 sequence: "FEHLER:  23505: doppelter Schl" is
     * 30 bytes, then the two of "ü" (and "»" two more further on) */
    char cut[32];
    us_pg_error_text(UNIQUE_DE, cut, 32);
    assert_string_equal(cut, "FEHLER:  23505: doppelter Schl");
    char whole[33];
    us_pg_error_text(UNIQUE_DE, whole, 33);
    assert_string_equal(whole, "FEHLER:  23505: doppelter Schl\xc3\xbc");
    char euro[8];
    us_pg_error_text("ab\xe2\x82\xac\xe2\x82\xac", euro, 8);
    assert_string_equal(euro, "ab\xe2\x82\xac");
    us_pg_error_text("abcd\xf0\x9f\x93\x84", euro, 8);
    assert_string_equal(euro, "abcd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlstate_is_read_from_the_first_error_line),
        cmocka_unit_test(test_retries_are_told_by_code_in_any_language),
        cmocka_unit_test(test_lost_connections_are_told_by_code_or_by_libpq),
        cmocka_unit_test(test_plain_errors_are_not_retried),
        cmocka_unit_test(test_quoted_data_is_not_read_as_a_code),
        cmocka_unit_test(test_resources_are_busy),
        cmocka_unit_test(test_text_is_one_line_without_location),
    };
    return fixture_run("us_pg_errors", tests, NULL, NULL);
}
