/*
 * Ejemplo de uso de CreateFileMapping() y MapViewOfFile(): dos procesos que comparten
 * memoria. A third exercise in the spirit of the course notes (Universidad de Oviedo,
 * Arquitectura de Computadores) and of its two solutions (ejercicio1.c, ejercicio2.c); it is
 * virtmem's, not the notes'.
 *
 * Enunciado: Escribir un programa que, ejecutado dos veces, haga de dos procesos que
 * comparten memoria. La primera ejecucion (proceso A) crea una seccion con nombre
 * "Local\MemoriaCompartida" de una pagina respaldada por el fichero de paginacion, proyecta
 * una vista en su espacio de direcciones, escribe en ella un mensaje y espera a que se pulse
 * una tecla. La segunda ejecucion (proceso B), mientras A espera, abre la seccion por su
 * nombre, proyecta una vista y muestra el mensaje. Cada proceso indica en pantalla la
 * direccion de su vista, y al terminar la desproyecta y cierra la seccion.
 *
 * On Windows, run it in two consoles: the first waits, the second reads. `virtmem tour` runs
 * it as two simulated 32-bit processes on one simulated machine: process B runs while A waits
 * in getchar(), and the maps show both views as `mapped` (MEM_MAPPED). Under `virtmem run`
 * each run is one process (alone on its machine, so it is always A).
 *
 * Build and run on Linux (needs the section functions of virtmem.h):
 *
 *     cargo build --release -p virtmem
 *     cc -std=gnu11 -Wno-implicit-int -Iinclude examples/c/ejercicio3.c \
 *        target/release/libvirtmem.a -lpthread -ldl -lm -o ejercicio3
 *     ./ejercicio3          # Proceso A: ... (then, in another terminal, ./ejercicio3)
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

#define NOMBRE "Local\\MemoriaCompartida"
#define TAMANO 4096

main()
{
    HANDLE h;
    char *p;

    /* Si la seccion ya existe, somos el proceso B */
    h = OpenFileMappingA( FILE_MAP_READ, FALSE, NOMBRE );

    if (h == NULL)
    {
        /* Proceso A: crear la seccion, proyectar una vista y escribir el mensaje */
        h = CreateFileMappingA( INVALID_HANDLE_VALUE,
                                NULL,
                                PAGE_READWRITE,
                                0,
                                TAMANO,
                                NOMBRE );
        if (h == NULL)
        {
            printf("Fallo en la CREACION de la seccion\n");
            return 1;
        }

        p = (char *) MapViewOfFile( h, FILE_MAP_ALL_ACCESS, 0, 0, TAMANO );
        if (p == NULL)
        {
            printf("Fallo en la PROYECCION de la vista\n");
            CloseHandle( h );
            return 1;
        }

        strcpy( p, "Hola, proceso B: te saluda el proceso A" );
        printf("Proceso A: vista en %p, mensaje escrito\n", p);
        printf("Proceso A: ejecute ahora el proceso B y despues pulse una tecla\n");
        getchar();
    }
    else
    {
        /* Proceso B: la seccion se abrio por su nombre; proyectar una vista y leer */
        p = (char *) MapViewOfFile( h, FILE_MAP_READ, 0, 0, TAMANO );
        if (p == NULL)
        {
            printf("Fallo en la PROYECCION de la vista\n");
            CloseHandle( h );
            return 1;
        }

        printf("Proceso B: vista en %p, mensaje leido: %s\n", p, p);
    }

    if ( UnmapViewOfFile( p ) && CloseHandle( h ) )
        printf("Exito al desproyectar y cerrar\n");
    else
        printf("Fallo al desproyectar o cerrar\n");
}
